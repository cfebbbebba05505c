import os
import sys
import tempfile
from pathlib import Path

# Prefect state must not leak between sessions: point PREFECT_HOME at a fresh folder before prefect is imported.
_PREFECT_HOME = tempfile.mkdtemp(prefix="tuneprep-prefect-")
os.environ["PREFECT_HOME"] = _PREFECT_HOME
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# One torch thread: the tests' models are tiny, and on a small shared machine two threads spin on each other
# (a 32-wide matmul took 7 ms with two, microseconds with one). Subprocesses the tests start inherit it.
os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import pytest  # noqa: E402

# absl (imported by rouge-score) makes its log handler at import, on whatever sys.stderr is then: under pytest,
# a capture file. logging.config.dictConfig (import-linter, Prefect) closes existing handlers, and absl's handler
# closes its stream unless it is sys.stderr/stdout of that moment: pytest's capture file got closed and the
# session died ("I/O operation on closed file", "lost sys.stderr"). Point it at the real stderr, never closed.
try:
    from absl import logging as absl_logging
except ImportError:  # pragma: no cover - absl comes with rouge-score
    pass
else:
    absl_logging.get_absl_handler().python_handler.stream = sys.__stderr__


@pytest.fixture(scope="session")
def prefect_harness():
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


def fast_config(**finetune):
    from flows.config import PipelineConfig

    return PipelineConfig.model_validate(
        {
            "name": "e2e",
            "finetune": {
                "max_steps": 40,
                "eval_every": 20,
                "batch_size": 4,
                "generate_n": 4,
                "generate_max_new_tokens": 16,
                **finetune,
            },
        }
    )


@pytest.fixture(scope="session")
def run_dir(prefect_harness, tmp_path_factory) -> Path:
    """One whole flow run on sample_data/ (shortened training), shared by the end-to-end tests."""
    from flows.pipeline import run_flow

    out = tmp_path_factory.mktemp("run") / "demo"
    run_flow(config=fast_config(), out=str(out))
    return out
