# Two entry points: `make demo` and `make test`. Both are idempotent from a fresh clone.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

AIRFLOW_ENV := PATH=$(CURDIR)/$(BIN):$$PATH AIRFLOW_HOME=$(CURDIR)/.airflow AIRFLOW__CORE__DAGS_FOLDER=$(CURDIR)/dags AIRFLOW__CORE__LOAD_EXAMPLES=False

.PHONY: airflow demo test lint typecheck unit bench clean install

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip uv

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/uv pip install -q --python $(BIN)/python -e '.[dev,s3,quality]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m airflow_datum_provider.demo

# The example DAGs in the Airflow UI at http://localhost:8080 (Ctrl-C stops it), after seeding
# their input repos (texts, notes, lines, readings, parameters, words) from examples/data/ into
# the store the DAGs use ($DATUM_STORE, else the default folder); a repo with data is left as is.
airflow: $(STAMP)
	@mkdir -p .airflow
	$(BIN)/python -m airflow_datum_provider.demo seed
	@echo "Airflow UI: http://localhost:8080  login: admin, password: printed below by airflow standalone"
	@echo "(also in .airflow/simple_auth_manager_passwords.json.generated); store: $${DATUM_STORE:-the default folder}"
	$(AIRFLOW_ENV) $(BIN)/airflow standalone

lint: $(STAMP)
	$(BIN)/ruff check airflow_datum_provider tests benchmarks dags
	$(BIN)/ruff format --check airflow_datum_provider tests benchmarks dags

typecheck: $(STAMP)
	$(BIN)/mypy

# The suite on two pytest-xdist workers: one per core of this machine and of CI (2 cores).
# Fixed, not -n auto: many tests start processes of their own (datum runners, Airflow stacks),
# so a worker per core already fills the machine, and the count does not follow what psutil
# reports. --dist loadfile: each test file runs whole on one worker, in file order, as it does
# serially, so a module-scoped fixture (an Airflow stack, a metadata DB set-up) exists once.
# (xdist_group / --dist loadgroup would be finer, but pytest-xdist 3.8 groups nothing on
# pytest 9.2: it renames item._nodeid, which pytest no longer reads.) --no-loadscope-reorder
# hands files out in collection order rather than most-tests-first, which would leave the
# long Airflow-stack files (few tests each) for last. PYTEST_WORKERS=0 runs it in one process.
PYTEST_WORKERS ?= 2

unit: $(STAMP)
	$(BIN)/python -m pytest -q -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder

test: lint typecheck unit

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_store.py --quick
	$(BIN)/python benchmarks/bench_plan.py --quick
	$(BIN)/python benchmarks/bench_engine.py --quick
	$(BIN)/python benchmarks/bench_batch.py --quick
	$(BIN)/python benchmarks/bench_cli.py --quick

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
