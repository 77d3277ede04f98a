# Two commands on a fresh machine: `make run` (the service on its embedded default: SQLite,
# local scheduling, http://127.0.0.1:8080) and `make test` (the whole suite). Each creates the
# virtual environment it needs.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: run test lint bench clean

# The eligibility engine is compiled in place (setup.py), and again whenever its source
# changes: nothing runs or tests a stale build. (The editable install leaves that to this rule,
# else a fresh venv would compile it twice.)
ENGINE := $(wildcard referral_service/domain/eligibility/*.py)
ENGINE_STAMP := $(VENV)/.engine-built

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	REFERRAL_PURE_PYTHON=1 $(VENV)/bin/pip install --quiet -e '.[dev]'
	touch $(STAMP)

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
