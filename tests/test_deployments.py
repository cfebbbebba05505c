"""`python -m flows.deployments`: the deployments of prefect.yaml, for flow.serve (nothing is started here)."""

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_serve_builds_the_deployments_prefect_yaml_declares():
    from flows.deployments import deployments

    spec = {d["name"]: d for d in yaml.safe_load((ROOT / "prefect.yaml").read_text())["deployments"]}
    built = {d.name: d for d in deployments(ROOT / "prefect.yaml")}
    assert set(built) == set(spec) == {"nightly", "watch"}
    assert built["nightly"].flow_name == "tuneprep-run" and built["watch"].flow_name == "tuneprep-drops"
    assert built["nightly"].schedules[0].schedule.cron == spec["nightly"]["schedules"][0]["cron"]
    assert built["watch"].schedules[0].schedule.interval.total_seconds() == spec["watch"]["schedules"][0]["interval"]
    assert built["nightly"].parameters == spec["nightly"]["parameters"]
    assert built["nightly"].entrypoint == "flows.pipeline.run_flow"  # a module path, as in prefect.yaml
    assert [t.expect for t in built["nightly"].triggers] == [{"tuneprep.drop.accepted"}]
