"""Prefect flows: orchestration only. The work lives in cleaners/, augment/, finetune/ and tuneprep/."""

import os

# Quiet, patient defaults for Prefect's ephemeral mode; a user's own settings win.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
