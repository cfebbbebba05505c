"""``tuneprep``: run the flows from a shell.

tuneprep run [--config FILE] [--out DIR]
tuneprep prepare INPUT... --out DIR [--config FILE]
tuneprep finetune DATA_DIR --out DIR [--config FILE]
tuneprep report RUN_DIR [--open]
tuneprep setup
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _config(args: argparse.Namespace, **overrides):
    from flows.config import load_config

    return load_config(args.config, **overrides)


def _summary(out: Path) -> None:
    manifest = json.loads((out / "manifest.json").read_text())
    splits = ", ".join(f"{k} {v['rows']}" for k, v in manifest["splits"].items())
    print(f"\nshards: {splits}  (accounting {'OK' if manifest['accounting']['ok'] else 'BROKEN'})")
    metrics = out / "model" / "metrics.json"
    if metrics.exists():
        m = json.loads(metrics.read_text())
        before = m.get("initial", {}).get("validation") or {}
        after = m.get("validation") or {}
        print(
            f"validation perplexity {before.get('perplexity', float('nan')):.1f} -> {after.get('perplexity', float('nan')):.1f}"
        )
    print(f"report: {out / 'report.md'}  (with plots: {out / 'report.html'})")


def _locked(out: str | Path):
    """Hold the output folder's lock from before Prefect starts; say so when a killed run's lock is taken over."""
    from tuneprep.lock import RunLock, describe

    lock = RunLock(out)
    lock.acquire()
    if lock.taken_over is not None:
        print(f"tuneprep: note: took over a stale lock left by {describe(lock.taken_over)}", file=sys.stderr)
    return lock


def cmd_run(args: argparse.Namespace) -> int:
    from flows.layout import default_out
    from flows.preflight import preflight

    cfg = _config(args, name=args.name)
    out = args.out or default_out(cfg)
    preflight(cfg, out)
    lock = _locked(out)
    try:
        from flows.pipeline import run_flow

        run_flow(config=cfg, out=out)
    finally:
        lock.release()
    _summary(Path(out))
    return 0


def cmd_prepare(args: argparse.Namespace) -> int:
    from flows.preflight import preflight

    cfg = _config(args, inputs=[p if "://" in p else str(Path(p).resolve()) for p in args.inputs] or None)
    preflight(cfg, args.out)  # inputs, config and output folder, before Prefect starts
    lock = _locked(args.out)
    try:
        from flows.prepare import prepare_flow

        prepare_flow(config=cfg, out=args.out)
    finally:
        lock.release()
    _summary(Path(args.out))
    return 0


def cmd_finetune(args: argparse.Namespace) -> int:
    if not Path(args.data_dir).is_dir():
        raise FileNotFoundError(f"no prepared data at {args.data_dir}")
    cfg = _config(args)
    from flows.finetune import finetune_flow

    metrics = finetune_flow(data_dir=args.data_dir, out=args.out, config=cfg.finetune)
    print(Path(metrics).read_text())
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    import webbrowser

    from flows.layout import RunPaths
    from flows.report import write_report
    from flows.report_html import write_html_report

    paths = RunPaths(args.run_dir)
    if not paths.manifest.exists():
        raise FileNotFoundError(f"{paths.manifest}: not a finished tuneprep run folder (no manifest.json)")
    write_report(paths, paths.model / "metrics.json")
    page = write_html_report(paths, paths.model / "metrics.json")
    print(paths.report)
    print(page)
    if args.open and not webbrowser.open(page.resolve().as_uri()):
        print(f"tuneprep: no browser to open here; open {page.resolve().as_uri()}", file=sys.stderr)
    return 0


def cmd_setup(args: argparse.Namespace) -> int:
    from augment.resources import apertium_available, ensure_wordnet

    print(ensure_wordnet())
    print(
        "apertium eng-spa: "
        + (
            "available"
            if apertium_available()
            else "not found (apt-get install apertium apertium-eng-spa); back-translation will be skipped"
        )
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="tuneprep", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("run", help="the whole flow: prepare, fine-tune, evaluate, report")
    r.add_argument("--config", type=Path)
    r.add_argument("--out", help="output folder (default runs/<name-or-timestamp>)")
    r.add_argument("--name", help="run name (used for the default output folder)")
    r.set_defaults(func=cmd_run)

    pr = sub.add_parser("prepare", help="inputs to Arrow shards, manifest and report; no training")
    pr.add_argument("inputs", nargs="*", help="files, folders or globs (default: the config's inputs)")
    pr.add_argument("--out", required=True)
    pr.add_argument("--config", type=Path)
    pr.set_defaults(func=cmd_prepare)

    f = sub.add_parser("finetune", help="train a causal LM on prepared shards")
    f.add_argument("data_dir", help="a `tuneprep prepare` output folder (or its shards/)")
    f.add_argument("--out", required=True, help="model folder")
    f.add_argument("--config", type=Path)
    f.set_defaults(func=cmd_finetune)

    rep = sub.add_parser("report", help="rebuild report.md and report.html for a finished run")
    rep.add_argument("run_dir")
    rep.add_argument("--open", action="store_true", help="open report.html in the default web browser")
    rep.set_defaults(func=cmd_report)

    s = sub.add_parser("setup", help="make the offline resources available (WordNet for nltk, apertium check)")
    s.set_defaults(func=cmd_setup)
    return p


def main(argv: list[str] | None = None) -> int:
    """Errors a user can act on (bad inputs or config, a busy output folder, too much input quarantined) are one
    line on stderr and exit status 2; ``TUNEPREP_DEBUG=1`` shows the traceback instead."""
    import os

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except Exception as e:
        if os.environ.get("TUNEPREP_DEBUG") or not _user_error(e):
            raise
        from flows.preflight import one_line

        print(f"tuneprep: error: {one_line(e)}", file=sys.stderr)
        return 2


def _user_error(e: BaseException) -> bool:
    """An error about the inputs, config or output folder, as opposed to a bug (which keeps its traceback)."""
    from tuneprep.lock import LockedError
    from tuneprep.runner import StopRun

    return isinstance(e, ValueError | OSError | LockedError | StopRun)


if __name__ == "__main__":
    sys.exit(main())
