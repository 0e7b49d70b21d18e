# Two commands for a newcomer: `make demo` and `make test`. Everything installs from here.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test lint format bench profile clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	@PY=$(PY) bash scripts/demo.sh

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

format: $(STAMP)
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

test: lint
	@bash scripts/ensure-postgres.sh
	@bash scripts/ensure-network-servers.sh
	@bash scripts/ensure-chromium.sh
	@PY=$(PY) bash scripts/ensure-spark.sh
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) bench/run.py
	$(PY) bench/pacing.py
	$(PY) bench/month.py
	$(PY) bench/month.py --daily-cap 6000

profile: $(STAMP)
	$(PY) bench/profile.py

clean:
	rm -rf $(VENV) out .pytest_cache .mypy_cache .ruff_cache *.egg-info
