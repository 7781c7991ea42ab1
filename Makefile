# The two commands of the README. Both set up .venv from uv.lock first (fast when done).
PY := .venv/bin/python
# TensorFlow's C++ INFO/WARNING lines and google-api-core's Python 3.10 notices are noise here.
export TF_CPP_MIN_LOG_LEVEL ?= 2
export PYTHONWARNINGS ?= ignore::FutureWarning

.PHONY: setup setup-orchestrators run test lint format

setup:
	@scripts/setup.sh

# .venv plus .venv-kfp and .venv-airflow, where the runner tests compile and load the pipeline.
setup-orchestrators:
	@scripts/setup.sh kfp airflow

## run: the pipeline end to end on the embedded default data, then its summary
run: setup
	$(PY) -m tfx_pipeline.runners.local

## test: the test suite (installs headless Chromium first: the report tests render HTML in it)
test: setup-orchestrators lint
	@scripts/install_chromium.sh
	$(PY) -m pytest

## lint: ruff's lint (with import order) and format check, and mypy on contract/, model/,
## serving/ (pyproject.toml); `make format` rewrites what ruff can
lint: setup
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

format: setup
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .
