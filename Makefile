# Two commands on a fresh machine: `make run` (the service on its embedded default: SQLite,
# local scheduling, http://127.0.0.1:8080) and `make test` (the whole suite). Each creates the
# virtual environment it needs.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: run test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The eligibility engine, compiled in place by the editable install (setup.py), is compiled
# again whenever its source changes: nothing runs or tests a stale build.
ENGINE := $(wildcard referral_service/domain/eligibility/*.py)
ENGINE_STAMP := $(VENV)/.engine-built

$(ENGINE_STAMP): $(STAMP) $(ENGINE) setup.py
	$(VENV)/bin/python setup.py --quiet build_ext --inplace
	touch $(ENGINE_STAMP)

run: $(ENGINE_STAMP)
	$(VENV)/bin/referral-service serve

test: $(ENGINE_STAMP)
	$(VENV)/bin/pytest -q -p no:cacheprovider

lint: $(STAMP)
	$(VENV)/bin/ruff check referral_service tests bench
	$(VENV)/bin/mypy referral_service

bench: $(ENGINE_STAMP)
	$(VENV)/bin/python -m bench

clean:
	rm -rf $(VENV) referral-service.db build referral_service/domain/eligibility/*.so
