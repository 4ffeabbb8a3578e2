# BondWatch: two commands for a fresh Debian/Ubuntu machine (run as root, or with sudo for apt and chroot):
#   make demo   - local broker + TimescaleDB, schema, the whole platform with simulators
#   make test   - everything the tests need, then the test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)

.PHONY: install services services-down demo test lint bench-ingest clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check --upgrade pip
	$(BIN)/pip install -q --disable-pip-version-check -e '.[dev,llrp]'
	rm -f $(VENV)/.installed-*
	touch $@

install: $(STAMP)

services: install
	$(BIN)/bondwatch services up

services-down: install
	$(BIN)/bondwatch services down

demo: services
	$(BIN)/bondwatch db migrate
	$(BIN)/bondwatch demo

test: services
	$(BIN)/pytest -q

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy bondwatch ingest rules api edge simulators bench

bench-ingest: services
	$(BIN)/python -m bench.ingest

clean: services-down
	rm -rf var $(VENV)
