"""The one-process alternative to a work pool and a worker: the deployments of ``prefect.yaml``, served.

    python -m flows.deployments [prefect.yaml]

Registers each deployment of the file (same names, parameters, schedules, triggers and concurrency
limits) with the Prefect server in ``PREFECT_API_URL`` and runs their flow runs in this process's
children until stopped; stopping it pauses their schedules. ``prefect.yaml`` stays the one place the
deployments are described.
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml
from prefect import serve
from prefect.deployments.runner import EntrypointType
from prefect.events import DeploymentEventTrigger
from prefect.schedules import Cron, Interval
from prefect.utilities.importtools import import_object

from flows.config import PROJECT_ROOT


def deployments(spec: str | Path = PROJECT_ROOT / "prefect.yaml") -> list:
    """``RunnerDeployment`` objects for every deployment in a prefect.yaml."""
    out = []
    for d in yaml.safe_load(Path(spec).read_text())["deployments"]:
        flow = import_object(d["entrypoint"])
        schedules = [
            Cron(s["cron"], timezone=s.get("timezone")) if "cron" in s else Interval(s["interval"])
            for s in d.get("schedules") or []
            if s.get("active", True) and ("cron" in s or "interval" in s)
        ]
        triggers = [
            DeploymentEventTrigger(**{k: v for k, v in t.items() if k != "type"})
            for t in d.get("triggers") or []
            if t.get("type", "event") == "event"
        ]
        out.append(
            flow.to_deployment(
                name=d["name"],
                parameters=d.get("parameters") or {},
                schedules=schedules,
                triggers=triggers or None,
                tags=d.get("tags"),
                description=d.get("description"),
                concurrency_limit=d.get("concurrency_limit"),
                entrypoint_type=EntrypointType.MODULE_PATH,  # as in prefect.yaml: flows/finetune.py shadows finetune/
            )
        )
    return out


if __name__ == "__main__":
    serve(*deployments(sys.argv[1] if len(sys.argv) > 1 else PROJECT_ROOT / "prefect.yaml"))
