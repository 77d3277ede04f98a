# Two commands on a fresh machine: `make run` (the service on its embedded default: SQLite,
# local scheduling, http://127.0.0.1:8080) and `make test` (the whole suite). Each creates the
# virtual environment it needs.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed
# pytest-xdist workers for `make test` (README, Set-up); `TEST_WORKERS=0 make test` runs every
# test in the one pytest process.
TEST_WORKERS ?= 4

.PHONY: run test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/referral-service serve

test: $(STAMP)
	$(VENV)/bin/pytest -q -p no:cacheprovider -n $(TEST_WORKERS) -m "not serial"
	$(VENV)/bin/pytest -q -p no:cacheprovider -m serial

lint: $(STAMP)
	$(VENV)/bin/ruff check referral_service tests bench
	$(VENV)/bin/mypy referral_service
	$(VENV)/bin/lint-imports

bench: $(STAMP)
	$(VENV)/bin/python -m bench

clean:
	rm -rf $(VENV) referral-service.db
