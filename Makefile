# fedmock: two commands on a fresh machine.
#   make run    install, migrate, seed the demo directory, ensure a key, serve with gunicorn
#               (FEDMOCK_FIXTURES=FILE make run loads that fixture file instead of the demo)
#   make test   install with test extras (and chromium/xmlsec1 from Debian), ruff, pytest
#   make test-postgres  the same suite against a throw-away PostgreSQL (scripts/with-postgres)
#   make bench  performance table (see bench/), ending with fedmock against SimpleSAMLphp 1.19
#               side by side; BENCH_ARGS="--only peer" runs that part alone

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
IDP_BASE_URL ?= http://127.0.0.1:$(PORT)
# At least two: the broker calls fedmock's own /aws/ (gunicorn.conf.py).
WORKERS ?= $(shell n=$$(nproc 2>/dev/null || echo 2); [ "$$n" -lt 2 ] && n=2; echo $$n)
FEDMOCK_FIXTURES ?=
BENCH_ARGS ?=
export IDP_BASE_URL

.PHONY: run test test-postgres bench lint install install-test system-deps clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

system-deps:
	./scripts/install-system-deps

# bootstrap: migrate, seed (or load the fixtures) and ensure the keys in one process, under the
# database's start-up lock, so that several hosts may start at once on one database.
run: install
	$(BIN)/python manage.py collectstatic --noinput -v 0
	$(BIN)/python manage.py bootstrap $(if $(FEDMOCK_FIXTURES),--fixtures "$(FEDMOCK_FIXTURES)")
	@echo ""
	@echo "  fedmock is serving on $(IDP_BASE_URL) ($(WORKERS) gunicorn workers)"
	@echo "  portal:    $(IDP_BASE_URL)/"
	@echo "  metadata:  $(IDP_BASE_URL)/saml/metadata/"
	@echo "  admin:     $(IDP_BASE_URL)/admin/"
	@echo "  $(if $(FEDMOCK_FIXTURES),directory: $(FEDMOCK_FIXTURES),demo logins (demo only): alice/alice  bob/bob  carol/carol  admin/admin)"
	@echo ""
	PORT=$(PORT) WEB_CONCURRENCY=$(WORKERS) exec $(BIN)/gunicorn -c gunicorn.conf.py idp.wsgi:application

lint: install-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: install-test system-deps lint
	$(BIN)/pytest

# The suite again on a throw-away PostgreSQL cluster from Debian's package (TEST_DATABASE_URL).
test-postgres: install-test
	./scripts/install-system-deps postgres
	./scripts/with-postgres $(BIN)/pytest

bench: install-test
	./scripts/install-system-deps bench
	$(BIN)/python bench/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) staticfiles db.sqlite3 db.sqlite3-wal db.sqlite3-shm db.sqlite3.startup-lock
