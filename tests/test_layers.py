"""The layering the README describes, checked: no import cycles between modules, configs that load light."""

import subprocess
import sys
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("tuneprep", "ingest", "cleaners", "augment", "shards", "finetune", "flows")


def _cycles(graph: grimp.ImportGraph, modules: set[str]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), i.e. import cycles."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(v: str) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.find_modules_directly_imported_by(v) & modules:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for m in sorted(modules):
        if m not in index:
            visit(m)
    return found


def test_no_module_or_package_cycles():
    graph = grimp.build_graph(*PACKAGES, exclude_type_checking_imports=True)
    modules = set(graph.modules)
    assert not _cycles(graph, modules)
    packages = {m.split(".")[0] for m in modules}
    edges = {
        (a.split(".")[0], b.split(".")[0])
        for a in modules
        for b in graph.find_modules_directly_imported_by(a) & modules
        if a.split(".")[0] != b.split(".")[0]
    }
    assert not [(a, b) for a, b in edges if (b, a) in edges], "package cycle"
    assert "tuneprep" in packages and not [b for a, b in edges if a == "tuneprep"], "the bottom imports the project"


def test_import_contracts_hold(capsys):
    """The import-linter contracts in pyproject.toml (layers one way down, Prefect only in flows)."""
    cli = pytest.importorskip("importlinter.cli")
    code = cli.lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True, no_logo=True)
    out = capsys.readouterr().out
    assert code == 0 and "0 broken" in out, out[-3000:]


@pytest.mark.parametrize(
    ("code", "heavy"),
    [
        # composing the configuration imports no stage code, no Prefect and no torch
        ("import flows.config", {"bs4", "trafilatura", "torch", "prefect", "transformers", "nltk"}),
        # an HTML extraction worker imports cleaners.html_text only: each worker start is CPU the run waits for
        ("import cleaners.html_text as t; t.strip_html('<p>warm</p>')", {"polars", "bs4", "pandas", "tuneprep.stage"}),
    ],
)
def test_light_entry_points_stay_light(code, heavy):
    check = f"import sys; {code}; print(sorted(set({sorted(heavy)!r}) & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
