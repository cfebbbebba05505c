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
    ],
)
def test_light_entry_points_stay_light(code, heavy):
    check = f"import sys; {code}; print(sorted(set({sorted(heavy)!r}) & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_an_extraction_worker_imports_the_extractors_only():
    """Each worker start is CPU the run waits for: no polars, bs4, pydantic or settings in a worker, and numpy
    (which the extractors import) without its BLAS thread pool, which costs 0.1 CPU-s to start."""
    from cleaners.config import HtmlConfig

    heavy = {"polars", "bs4", "pandas", "pydantic", "cleaners.config", "tuneprep.stage", "tuneprep.settings"}
    script = f"""
import os, sys, threading
from multiprocessing import Pipe
os.environ.pop("OPENBLAS_NUM_THREADS", None)
from cleaners.html_text import serve_pages
assert "numpy" not in sys.modules, "numpy imported before the worker could set its thread count"
ours, theirs = Pipe()
def parent():
    assert ours.recv() == "ready"
    ours.send("<html><body><article><h1>Title</h1><p>A paragraph of article text to keep, long enough.</p>"
              "</article></body></html>")
    print(ours.recv())
    ours.close()
threading.Thread(target=parent).start()
serve_pages(theirs, {HtmlConfig().model_dump()!r})
print(sorted(set({sorted(heavy)!r}) & set(sys.modules)), os.environ["OPENBLAS_NUM_THREADS"], "numpy" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    page, imports = out.stdout.strip().splitlines()
    assert page.startswith("('ok', 'Title") and imports == "[] 1 True"
