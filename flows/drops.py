"""Data drops: new files in the inboxes become a new version of the corpus, then the model learns from them.

One pass (the ``tuneprep-drops`` flow; ``tuneprep drops`` from a shell; the ``tuneprep-drops/watch``
deployment every few minutes):

1. find the inbox files whose content the store has not taken in (by sha256, against its ledger);
2. prepare only those, as the next version folder of the store: deduplicated against everything already
   in the corpus (``dedup.reuse_index`` = the latest version, whose indexes cover every earlier one),
   every earlier group keeping its split (``split.previous``), tokenized with the corpus's tokenizer;
3. commit: ``latest`` swaps to the new version and the ledger lists its files — only once the version is
   complete, so a drop that fails midway is retried by the next pass (resuming from its completion
   markers) and never half-applied; a file that cannot be read is quarantined and the drop goes on;
4. emit the Prefect event ``tuneprep.drop.accepted`` with the drop's counts, for automations;
5. fine-tune from the last fine-tuned model on the new shards, or from the base on every version's.

The same files delivered again add nothing: their hashes are in the ledger.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path

from prefect import flow, get_run_logger
from prefect.events import emit_event

from flows.config import PipelineConfig
from flows.layout import RunPaths
from flows.pipeline import finetune_once
from flows.prepare import report, run_data
from flows.store import CorpusStore, DropFile, StoreBusy
from tuneprep.lock import RunLock

Log = Callable[[str], None]
EVENT = "tuneprep.drop.accepted"


def version_config(cfg: PipelineConfig, store: CorpusStore, version: Path) -> PipelineConfig:
    """The config a version is prepared with: its own inputs, and the corpus so far for dedup, split and tokenizer."""
    latest = store.latest()
    update: dict = {"inputs": [str(store.inputs(version))], "name": f"{cfg.name or 'drops'}-{version.name}"}
    if latest is not None:
        update["dedup"] = cfg.dedup.model_copy(update={"reuse_index": str(latest)})
        update["split"] = cfg.split.model_copy(update={"previous": str(latest)})
        update["tokenizer"] = cfg.tokenizer.model_copy(update={"pretrained": str(latest / "tokenizer")})
    return cfg.model_copy(update=update)


def file_status(version: Path) -> dict[str, dict]:
    """Per staged file (its path under received/<version>/), how the load went: files quarantined whole, and why."""
    status: dict[str, dict] = {}
    quarantine = RunPaths(version).quarantine / "load.jsonl"
    prefix = f"{version.name}/"  # a source is named from the input folder's name down
    if quarantine.exists():
        for q in map(json.loads, quarantine.read_text().splitlines()):
            if q["locator"] == "" and q["source"].startswith(prefix):
                rel = q["source"].removeprefix(prefix)
                status[rel] = {"status": "quarantined", "reason": q["reason"], "detail": q["detail"]}
    return status


def drop_summary(version: Path, manifest: dict, files: list[DropFile], status: dict[str, dict]) -> dict:
    """The counts of one accepted drop: the event's payload and drop.json's summary."""
    stages = manifest["stages"]
    reasons = manifest.get("dropped_by_reason", {})
    per_split = manifest["profile"]["per_split"]
    return {
        "version": version.name,
        "files": len(files),
        "files_quarantined": sum(1 for f in files if f.relative in status),
        "records_read": stages[0]["read"] if stages else 0,
        "records_quarantined": sum(s["quarantined"] for s in stages),
        "exact_duplicates": reasons.get("exact_dedup:exact_duplicate", 0),
        "near_duplicates": reasons.get("near_dedup:near_duplicate", 0),
        "new_records": {s: v["original"] for s, v in per_split.items()},
        "variants": sum(v["augmented"] for v in per_split.values()),
        "rows": {s: v["rows"] for s, v in manifest["splits"].items()},
    }


def emit_accepted(store: CorpusStore, version: Path, summary: dict) -> None:
    """``tuneprep.drop.accepted`` on the resource ``tuneprep.drop.<store id>.<version>``."""
    store_id = hashlib.sha256(str(store.root.resolve()).encode()).hexdigest()[:12]
    emit_event(
        event=EVENT,
        resource={
            "prefect.resource.id": f"tuneprep.drop.{store_id}.{version.name}",
            "prefect.resource.name": version.name,
            "tuneprep.store": str(store.root.resolve()),
        },
        payload={**summary, "store": str(store.root.resolve()), "path": str(version.resolve())},
    )


def corpus_view(store: CorpusStore, version: Path) -> Path:
    """A data folder over every committed version's shards (linked, not copied) with this version's tokenizer."""
    from shards.tokenization import tokenizer_identity
    from shards.writer import combine_splits
    from tuneprep.files import atomic_write_json

    view = RunPaths(version / "corpus")
    versions = [v for v in store.committed() if (v / "shards").is_dir()]
    for split in ("train", "validation", "test"):
        sources = [v / "shards" / split for v in versions if _rows(v, split)]
        combine_splits(sources or [version / "shards" / split], view.shards / split)
    shutil.rmtree(view.tokenizer, ignore_errors=True)
    shutil.copytree(version / "tokenizer", view.tokenizer)
    manifest = {"tuneprep_manifest": 1, "kind": "corpus", "versions": [v.name for v in versions],
                "tokenizer": tokenizer_identity(view.tokenizer)}  # fmt: skip
    atomic_write_json(view.manifest, manifest)
    return view.out


def _rows(version: Path, split: str) -> int:
    return json.loads((version / "manifest.json").read_text())["splits"][split]["rows"]


def finetune_version(cfg: PipelineConfig, store: CorpusStore, version: Path, log: Log) -> str | None:
    """Fine-tune on the drop: from the last fine-tuned model on its shards, or from the base on the whole corpus."""
    if _rows(version, "train") == 0:
        log(f"finetune: {version.name} adds no training rows; the model stays as it is")
        return None
    finetune_cfg, data = cfg.finetune, version
    last = store.last_model()
    if cfg.drops.finetune_from == "last" and last is not None and last.parent != version:
        finetune_cfg = finetune_cfg.model_copy(update={"model": str(last)})
        log(f"finetune: {version.name} from the last fine-tuned model, {last}")
    elif len(store.committed()) > 1:
        data = corpus_view(store, version)
        log(f"finetune: {version.name} from {cfg.finetune.model or 'scratch'} on every version's shards")
    return finetune_once(str(data), str(version / "model"), finetune_cfg, log)


def one_pass(cfg: PipelineConfig, store: CorpusStore, log: Log, finetune: bool) -> dict:
    """Take in the new files as one version (or retry the last version's fine-tune); the store's lock is held."""
    store.reconcile()
    new = store.scan(cfg.drops.inbox, cfg.drops.min_age_s)
    latest = store.latest()
    if not new:
        log("drops: nothing new in " + ", ".join(cfg.drops.inbox))
        result = {"status": "nothing new", "latest": latest.name if latest else None}
        if finetune and latest is not None and not (latest / "model" / "metrics.json").exists():
            result["metrics"] = finetune_version(cfg, store, latest, log)  # a fine-tune that failed last time
            report(str(latest), result["metrics"])
        return result
    version, resumed = store.stage(new)
    attempts = store.attempts(version)
    if attempts > cfg.drops.max_attempts:
        store.reject(new, f"the drop failed {cfg.drops.max_attempts} times (see {version}/)")
        log(f"drops: {len(new)} files failed {cfg.drops.max_attempts} times; rejected (store/rejected.jsonl)")
        return {"status": "rejected", "files": [f.path for f in new]}
    log(f"drops: {len(new)} new files -> {version.name}" + (f" (attempt {attempts}, resuming)" if resumed else ""))
    with RunLock(version):
        manifest = run_data(version_config(cfg, store, version), str(version))
    status = file_status(version)
    summary = drop_summary(version, manifest, new, status)
    store.commit(version, summary, status)
    log(f"drops: {version.name} committed: {json.dumps(summary)}")
    emit_accepted(store, version, summary)
    metrics = finetune_version(cfg, store, version, log) if finetune else None
    report(str(version), metrics)
    return {"status": "accepted", **summary, "metrics": metrics}


@flow(name="tuneprep-drops", log_prints=True)
def drops_flow(config: PipelineConfig = PipelineConfig(), finetune: bool | None = None) -> dict:
    """One pass over ``drops.inbox``: new files become the next version in ``drops.store``, then the fine-tune."""
    log = get_run_logger().info
    if not config.drops.store or not config.drops.inbox:
        raise ValueError("drops.store and drops.inbox must be set in the config")
    store = CorpusStore(config.drops.store)
    try:
        with store.lock():
            return one_pass(config, store, log, config.drops.finetune if finetune is None else finetune)
    except StoreBusy as e:
        log(f"drops: {e}; this pass does nothing")
        return {"status": "busy"}


if __name__ == "__main__":
    import sys

    from flows.config import load_config

    drops_flow(config=load_config(sys.argv[1] if len(sys.argv) > 1 else None))
