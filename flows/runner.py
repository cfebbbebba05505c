"""Scale-out: the partitioned steps as one Prefect task per partition on a Dask cluster, through prefect-dask.

``runner.kind: dask`` runs the data steps as a subflow whose task runner is a ``DaskTaskRunner``: a local
cluster of ``runner.workers`` processes, or the scheduler at ``runner.address``. The single steps (load,
dedup's index merge, the split, decontamination, tokenizer training, shard writing) run in the flow's own
process; each partition of cleaning, augmentation and tokenization is a task on a worker. Tasks pass
paths and small summaries, so the workers must see the run folder (one machine, or a shared filesystem:
``docs/dask.md``). The partitions and their merge are the same as in-process, so the shards are too.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.utilities.annotations import unmapped

from flows.config import RunnerConfig
from flows.layout import RunPaths
from tuneprep.partitions import Partition


def dask_task_runner(cfg: RunnerConfig):
    """A ``DaskTaskRunner`` for the config: the scheduler at ``address``, or a local cluster of worker processes.

    Workers are not daemon processes, so a task may start processes of its own (HTML extraction runs in a
    killable child process, ``cleaners.html``; daemonic processes may not have children).
    """
    import dask
    from prefect_dask import DaskTaskRunner

    dask.config.set({"distributed.worker.daemon": False})

    if cfg.address:
        return DaskTaskRunner(address=cfg.address)
    threads = str(cfg.threads_per_worker)
    # One worker = ``threads_per_worker`` cores: the native libraries' own pools must not take the others.
    env = {"POLARS_MAX_THREADS": threads, "RAYON_NUM_THREADS": threads, "OMP_NUM_THREADS": threads,
           "TOKENIZERS_PARALLELISM": "false"}  # fmt: skip
    return DaskTaskRunner(
        cluster_kwargs={
            "n_workers": cfg.workers,
            "threads_per_worker": cfg.threads_per_worker,
            "processes": True,
            "dashboard_address": ":0",  # a free port: several clusters on one machine must not collide on 8787
            "env": env,
        }
    )


@contextlib.contextmanager
def api_for_workers() -> Iterator[str]:
    """Point Dask worker processes at this process's Prefect API while the cluster runs.

    Workers report their task runs to the API. Without ``PREFECT_API_URL`` (Prefect's ephemeral mode)
    each worker process would start a server of its own; they inherit the environment, so export the
    URL of the server this process uses, starting the ephemeral one if it is not running yet.
    """
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    if not url:
        from prefect.server.api.server import SubprocessASGIServer

        server = SubprocessASGIServer()
        server.start(timeout=int(os.environ.get("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")))
        url = server.api_url
    before = os.environ.get("PREFECT_API_URL")
    os.environ["PREFECT_API_URL"] = url
    try:
        yield url
    finally:
        if before is None:
            os.environ.pop("PREFECT_API_URL", None)
        else:
            os.environ["PREFECT_API_URL"] = before


@task(cache_policy=NO_CACHE, task_run_name="{step} {part.name}")
def partition_task(step: str, cfg, out: str, part: Partition, key: str | None) -> dict:
    """One partition of a partitioned step, on whichever worker the task runner picks."""
    from flows.partitioned import run_part
    from flows.steps import PARTITIONED

    return run_part(PARTITIONED[step], cfg, RunPaths(out), part, key, get_run_logger().info)


def prefect_map(step: str, cfg, paths: RunPaths, parts: list[Partition], key: str | None) -> list[dict]:
    """Submit one task per partition to the flow's task runner and wait for all, in partition order.

    ``cfg`` is a pydantic model, which Prefect's ``map`` would iterate over: it goes in ``unmapped``.
    """
    futures = partition_task.map(unmapped(step), unmapped(cfg), unmapped(str(paths.out)), parts, unmapped(key))
    return [f.result() for f in futures]
