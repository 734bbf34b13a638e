# Targets are the README's commands. `make test` works on a fresh clone with nothing installed.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
export OMP_NUM_THREADS ?= 1
export MKL_NUM_THREADS ?= 1
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: install test lint demo ui bench clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(PY) -m ruff check mediafm_core mediafm_assets tests bench
	$(PY) -m ruff format --check mediafm_core mediafm_assets tests bench
	$(PY) -m pytest -n 2 --dist loadfile --durations=15 tests

lint: $(STAMP)
	$(PY) -m ruff check mediafm_core mediafm_assets tests bench
	$(PY) -m ruff format --check mediafm_core mediafm_assets tests bench

demo: $(STAMP)
	$(PY) -m mediafm_assets.demo

ui: $(STAMP)
	mkdir -p .demo/dagster_home && cp -n dagster.yaml .demo/dagster_home/ || true
	DAGSTER_HOME=$${DAGSTER_HOME:-$(CURDIR)/.demo/dagster_home} $(VENV)/bin/dagster dev -h 127.0.0.1 -w workspace.yaml

bench: $(STAMP)
	$(PY) bench/ablation.py
	$(PY) bench/train_throughput.py
	$(PY) bench/shots.py
	$(PY) bench/encode_title.py
	$(PY) bench/query.py
	$(PY) bench/cold_start.py

clean:
	rm -rf $(VENV) .demo .dagster_home .pytest_cache .ruff_cache
