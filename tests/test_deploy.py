"""The deployments in prefect.yaml on a real Prefect server, with SQLite and with PostgreSQL.

Starts a server on 127.0.0.1 (a free port, a temporary PREFECT_HOME), creates the process work pool,
runs `prefect deploy --all` from the repository root, starts a worker, runs `tuneprep-run/nightly` by
name and checks what it wrote, its artifacts, and that the cron schedule produced scheduled runs; then
stops every process it started and checks none is left.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from prefect_server import BIN, alive, postgres_unavailable, start_postgres, start_server

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


@pytest.fixture(params=["sqlite", "postgresql"])
def server(request):
    pg = None
    if request.param == "postgresql":
        reason = postgres_unavailable()
        if reason:
            pytest.skip(f"no PostgreSQL for the Prefect server: {reason}")
        pg = start_postgres()
    try:
        srv = start_server(pg.url if pg else None)
    except BaseException:
        if pg:
            pg.stop()
        raise
    srv.env.update(PWD=str(ROOT), PREFECT_WORKER_QUERY_SECONDS="2")  # prefect.yaml's pull step uses {{ $PWD }}
    yield srv
    srv.stop()
    if pg:
        pg.stop()
    assert not [p.args for p in [srv.proc, *srv.started] if alive(p)], "a process the test started is still running"


async def _server_state(run_id) -> dict:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        FlowRunFilter,
        FlowRunFilterDeploymentId,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType

    async with get_client() as client:
        nightly = await client.read_deployment_by_name("tuneprep-run/nightly")
        watch = await client.read_deployment_by_name("tuneprep-drops/watch")
        scheduled = await client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                deployment_id=FlowRunFilterDeploymentId(any_=[nightly.id]),
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.SCHEDULED])),
            )
        )
        artifacts = await client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run_id]))
        )
        automations = await client.read_automations()
        return {
            "nightly": nightly,
            "watch": watch,
            "scheduled": scheduled,
            "artifacts": {a.key: a for a in artifacts},
            "automations": automations,
        }


def test_deployments_run_on_a_real_server(server, tmp_path):
    from prefect.client.schemas.objects import StateType
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    server.cli("work-pool", "create", "tuneprep", "--type", "process", "--overwrite")
    deployed = server.cli("--no-prompt", "deploy", "--all", cwd=ROOT)
    assert "tuneprep-run/nightly" in deployed.stdout and "tuneprep-drops/watch" in deployed.stdout
    server.spawn([str(BIN / "prefect"), "worker", "start", "--pool", "tuneprep", "--name", "test"], "worker.log", ROOT)

    out = tmp_path / "nightly"
    config = {
        "name": "deploy-test",
        "inputs": [str(ROOT / "sample_data" / "tickets.csv")],
        "augment": {"enabled": False},
        "finetune": {"max_steps": 5, "eval_every": 0, "batch_size": 8, "generate_n": 0},
    }
    with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
        run = run_deployment("tuneprep-run/nightly", parameters={"config": config, "out": str(out)}, timeout=900)
        state = asyncio.run(_server_state(run.id))
    logs = (server.home / "worker.log").read_text()[-4000:]
    assert run.state_type == StateType.COMPLETED, f"{run.state_name}\n{logs}"

    for split in ("train", "validation", "test"):
        assert list((out / "shards" / split).glob("*.arrow")), split
    assert json.loads((out / "manifest.json").read_text())["accounting"]["ok"]
    assert (out / "model" / "metrics.json").exists() and list((out / "model").glob("*.safetensors"))

    schedule = state["nightly"].schedules[0]
    assert schedule.active and schedule.schedule.cron == "0 3 * * *"
    assert state["scheduled"], "the cron schedule produced no scheduled runs"
    for r in state["scheduled"]:
        start = r.expected_start_time.astimezone(UTC)
        assert (start.hour, start.minute) == (3, 0) and start > datetime.now(UTC)
    assert state["watch"].schedules[0].schedule.interval.total_seconds() == 300
    assert {"tuneprep-report", "tuneprep-stage-counts", "tuneprep-output", "tuneprep-metrics"} <= set(
        state["artifacts"]
    )
    stages = state["artifacts"]["tuneprep-stage-counts"].data
    stages = json.loads(stages) if isinstance(stages, str) else stages
    assert [s["name"] for s in stages][:2] == ["load", "strip_html"] and "reasons" in stages[0]
    assert str(out) in state["artifacts"]["tuneprep-output"].data
    assert any(a.name.startswith("nightly") and not a.enabled for a in state["automations"]), "trigger example"
