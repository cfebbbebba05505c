# Two commands on a fresh machine: `make demo` and `make test`. Both create .venv as needed.
PYTHON ?= python3
TORCH ?= torch==2.13.0
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.tuneprep-installed
BENCH_STAMP := $(VENV)/.tuneprep-bench-installed

.PHONY: setup demo test lint clean bench-setup bench bench-quick

$(STAMP): pyproject.toml scripts/setup_system.sh
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH)"
	$(BIN)/python -m pip install -q -e '.[dev]'
	bash scripts/setup_system.sh
	$(BIN)/tuneprep setup
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(BIN)/tuneprep run --out runs/demo

test: setup
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

# Benchmarks (bench/README.md): the baselines they measure against, then every bench/<name>/run.py in turn,
# one summary table in bench/out/summary.md. BENCH_ARGS passes options on, e.g. BENCH_ARGS="--only dedup pipeline".
$(BENCH_STAMP): $(STAMP) pyproject.toml
	$(BIN)/python -m pip install -q "$(TORCH)" -e '.[dev,bench,rensa]'
	$(BIN)/python -m pip check
	touch $(BENCH_STAMP)

bench-setup: $(BENCH_STAMP)

bench: bench-setup
	$(BIN)/python -m bench $(BENCH_ARGS)

bench-quick: bench-setup
	$(BIN)/python -m bench --quick $(BENCH_ARGS)

clean:
	rm -rf runs .pytest_cache
