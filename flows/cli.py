"""``tuneprep``: run the flows from a shell.

tuneprep run [--config FILE] [--out DIR] [--runner local|dask --workers N --address ADDR]
tuneprep prepare INPUT... --out DIR [--config FILE] [--runner local|dask --workers N --address ADDR]
tuneprep finetune DATA_DIR --out DIR [--config FILE]
tuneprep ablate RUN_DIR [--config FILE] [--tokens N] [--seeds 3] [--no-per-augmenter] [--keep-weights]
tuneprep generate MODEL_DIR "prompt" [--chat] [--max-new-tokens N] [--do-sample --temperature T --top-p P ...]
tuneprep serve MODEL_DIR [--host 127.0.0.1] [--port 8000]
tuneprep drops [--config FILE]
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

    cfg = load_config(args.config, **overrides)
    runner = {k: getattr(args, k, None) for k in ("workers", "address", "partition_rows")}
    runner = {"kind": getattr(args, "runner", None), **runner}
    runner = {k: v for k, v in runner.items() if v is not None}
    if runner:
        if "kind" not in runner and ("workers" in runner or "address" in runner):
            runner["kind"] = "dask"  # --workers or --address alone mean Dask
        cfg = cfg.model_copy(update={"runner": cfg.runner.model_validate({**cfg.runner.model_dump(), **runner})})
    return cfg


def _runner_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("where the partitioned steps run (config: runner)")
    g.add_argument("--runner", choices=["local", "dask"], help="local: this process; dask: one task per partition")
    g.add_argument("--workers", type=int, help="Dask local cluster: worker processes")
    g.add_argument("--address", help="Dask: an existing scheduler (tcp://host:8786) instead of a local cluster")
    g.add_argument("--partition-rows", type=int, help="records per partition")


def _ppl(m: dict | None) -> str:
    return "–" if not m or m.get("perplexity") is None else f"{m['perplexity']:.1f}"


def _score(m: dict | None, key: str, digits: int) -> str:
    value = ((m or {}).get("generation") or {}).get(key)
    return "–" if value is None else f"{value:.{digits}f}"


def model_summary(metrics_path: Path) -> list[str]:
    """Base -> final perplexity per held-out split (and per format when both occur), BLEU/ROUGE-L of answers."""
    m = json.loads(metrics_path.read_text())
    base, final = m.get("base") or {}, m.get("final") or {}
    lines = []
    for split in ("validation", "test"):
        before, after = base.get(split), final.get(split)
        if not after:
            continue
        line = f"{split} perplexity {_ppl(before)} -> {_ppl(after)}"
        formats = after.get("by_format") or {}
        if len(formats) > 1:
            parts = [
                f"{name} {_ppl(((before or {}).get('by_format') or {}).get(name))} -> {_ppl(fm)}"
                for name, fm in formats.items()
            ]
            line += f" ({', '.join(parts)})"
        lines.append(line)
        gen = after.get("generation")
        if gen and gen.get("n"):
            lines.append(
                f"  conversations, {gen['n']} answers: BLEU {_score(before, 'bleu', 1)} -> {_score(after, 'bleu', 1)}, "
                f"ROUGE-L {_score(before, 'rouge_l', 3)} -> {_score(after, 'rouge_l', 3)}"
            )
    early = " (stopped early)" if m.get("stopped_early") else ""
    lines.append(
        f"exported step {m.get('best_step')}{early}; {m.get('train_tokens', 0):,} loss tokens at "
        f"{m.get('tokens_per_s') or 0:,.0f}/s"
    )
    return lines


def _summary(out: Path) -> None:
    manifest = json.loads((out / "manifest.json").read_text())
    splits = ", ".join(f"{k} {v['rows']}" for k, v in manifest["splits"].items())
    print(f"\nshards: {splits}  (accounting {'OK' if manifest['accounting']['ok'] else 'BROKEN'})")
    metrics = out / "model" / "metrics.json"
    if metrics.exists():
        print("\n".join(model_summary(metrics)))
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

    metrics = Path(finetune_flow(data_dir=args.data_dir, out=args.out, config=cfg.finetune))
    print("\n".join(model_summary(metrics)))
    print(f"model: {metrics.parent}")
    return 0


def cmd_ablate(args: argparse.Namespace) -> int:
    """The run's own fine-tuning settings (its manifest's config) unless --config names others."""
    run_dir = Path(args.run_dir)
    if not (run_dir / "shards").is_dir():
        raise FileNotFoundError(f"{run_dir}: not a prepared run folder (no shards/)")
    if args.config is not None:
        cfg = _config(args).finetune
    else:
        from finetune import FinetuneConfig

        manifest = run_dir / "manifest.json"
        saved = (json.loads(manifest.read_text()).get("config") or {}).get("finetune") if manifest.exists() else None
        cfg = FinetuneConfig.model_validate(saved or {})
    lock = _locked(run_dir)
    try:
        from flows.ablate import ablation_flow

        path = Path(
            ablation_flow(
                run_dir=str(run_dir),
                config=cfg,
                tokens=args.tokens,
                seeds=args.seeds,
                per_augmenter=args.per_augmenter,
                keep_weights=args.keep_weights,
            )
        )
    finally:
        lock.release()
    from finetune.ablation import markdown

    summary = json.loads(path.read_text())
    print(markdown(summary))
    print(summary["verdict"])
    print(f"ablation: {path}")
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    from finetune.generate import Sampling, chat_prompt, complete, load, text_prompt

    model, tokenizer = load(args.model_dir, args.device)
    if args.chat:
        messages = [{"role": "system", "content": args.system}] if args.system else []
        prompt = chat_prompt(tokenizer, [*messages, {"role": "user", "content": args.prompt}])
    else:
        prompt = text_prompt(tokenizer, args.prompt)
    sampling = Sampling(
        max_new_tokens=args.max_new_tokens,
        do_sample=args.do_sample,
        temperature=args.temperature,
        top_p=args.top_p,
        top_k=args.top_k,
        repetition_penalty=args.repetition_penalty,
        seed=args.seed,
        stop=tuple(args.stop or ()),
    )
    (done,) = complete(model, tokenizer, [prompt], sampling)
    print(done.text)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from finetune.serve import serve

    serve(args.model_dir, host=args.host, port=args.port, device=args.device, max_tokens_cap=args.max_tokens_cap)
    return 0


def cmd_drops(args: argparse.Namespace) -> int:
    from flows.drops import drops_flow

    cfg = _config(args)
    result = drops_flow(config=cfg)
    print(json.dumps(result, indent=2))
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
    from augment.resources import apertium_available, ensure_wordnet, ensure_wordnet_index

    print(ensure_wordnet())
    print(ensure_wordnet_index())
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
    _runner_options(r)
    r.set_defaults(func=cmd_run)

    pr = sub.add_parser("prepare", help="inputs to Arrow shards, manifest and report; no training")
    pr.add_argument("inputs", nargs="*", help="files, folders or globs (default: the config's inputs)")
    pr.add_argument("--out", required=True)
    pr.add_argument("--config", type=Path)
    _runner_options(pr)
    pr.set_defaults(func=cmd_prepare)

    f = sub.add_parser("finetune", help="train a causal LM on prepared shards")
    f.add_argument("data_dir", help="a `tuneprep prepare` output folder (or its shards/)")
    f.add_argument("--out", required=True, help="model folder")
    f.add_argument("--config", type=Path)
    f.set_defaults(func=cmd_finetune)

    a = sub.add_parser("ablate", help="does augmentation help? train with and without it, several seeds, one budget")
    a.add_argument("run_dir", help="a prepared run folder (from `tuneprep prepare` or `tuneprep run`)")
    a.add_argument("--config", type=Path, help="fine-tuning settings (default: the run's own, from its manifest)")
    a.add_argument(
        "--tokens", type=int, help="loss tokens per run (default: finetune.epochs passes over the originals)"
    )
    a.add_argument("--seeds", type=int, default=3, help="runs per arm, seeds finetune.seed, +1, +2, ...")
    a.add_argument("--no-per-augmenter", dest="per_augmenter", action="store_false", help="only the with/without arms")
    a.add_argument("--keep-weights", action="store_true", help="keep every run's exported weights")
    a.set_defaults(func=cmd_ablate)

    g = sub.add_parser("generate", help="complete a prompt with an exported model")
    g.add_argument("model_dir", help="a `tuneprep finetune` output folder (or any causal LM folder)")
    g.add_argument("prompt")
    g.add_argument("--chat", action="store_true", help="the prompt is a user turn under the chat template")
    g.add_argument("--system", help="a system turn before the user's (with --chat)")
    g.add_argument("--max-new-tokens", type=int, default=128)
    g.add_argument("--do-sample", action="store_true", help="sample (else greedy)")
    g.add_argument("--temperature", type=float, default=1.0)
    g.add_argument("--top-p", type=float, default=1.0)
    g.add_argument("--top-k", type=int, default=50)
    g.add_argument("--repetition-penalty", type=float, default=1.0)
    g.add_argument("--seed", type=int)
    g.add_argument("--stop", action="append", help="stop at this string (repeatable)")
    g.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    g.set_defaults(func=cmd_generate)

    sv = sub.add_parser("serve", help="serve a model over an OpenAI-style HTTP API")
    sv.add_argument("model_dir")
    sv.add_argument("--host", default="127.0.0.1")
    sv.add_argument("--port", type=int, default=8000)
    sv.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    sv.add_argument("--max-tokens-cap", type=int, default=1024, help="largest max_tokens a request may ask for")
    sv.set_defaults(func=cmd_serve)
    d = sub.add_parser("drops", help="one pass over drops.inbox: prepare new files as a new corpus version, fine-tune")
    d.add_argument("--config", type=Path, help="a config with drops.inbox and drops.store")
    _runner_options(d)
    d.set_defaults(func=cmd_drops)

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
