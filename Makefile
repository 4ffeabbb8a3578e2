# BondWatch: two commands for a fresh Debian/Ubuntu machine (run as root, or with sudo for apt and chroot):
#   make demo   - local broker + TimescaleDB, schema, the whole platform with simulators
#   make test   - everything the tests need, then the test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)

.PHONY: install system-packages services services-down demo test lint bench-ingest clean dashboards

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check --upgrade pip
	$(BIN)/pip install -q --disable-pip-version-check -e '.[dev,llrp]'
	rm -f $(VENV)/.installed-*
	touch $@

# Grafana's dashboard schema (npm @grafana/schema, pinned to the Grafana image's version) and TypeScript, for
# tests/dashboards/test_schema.py; Node.js from Debian when the machine has none.
SCHEMA_DIR   := tests/dashboards/schema
SCHEMA_STAMP := $(SCHEMA_DIR)/node_modules/.installed-$(shell sha1sum $(SCHEMA_DIR)/package-lock.json | cut -c1-12)
$(SCHEMA_STAMP): $(SCHEMA_DIR)/package-lock.json
	@command -v npm >/dev/null || { $(SUDO) apt-get update -qq >/dev/null && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null; }
	cd $(SCHEMA_DIR) && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
	touch $@

install: $(STAMP) system-packages $(SCHEMA_STAMP)

# Debian packages: a Chinese TrueType font for the monthly report's PDF and charts (reports/fonts.py finds it),
# poppler-utils (pdftoppm, pdftotext) for the report tests. Only when missing, so a second run asks nothing.
REPORT_FONT := /usr/share/fonts/truetype/wqy/wqy-microhei.ttc
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
system-packages:
	@if [ ! -f $(REPORT_FONT) ] || ! command -v pdftoppm >/dev/null || ! command -v pdftotext >/dev/null; then \
		echo "installing fonts-wqy-microhei poppler-utils"; \
		$(SUDO) apt-get update -qq >/dev/null && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
			fonts-wqy-microhei poppler-utils >/dev/null; \
	fi

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
	$(BIN)/mypy bondwatch ingest rules api edge simulators bench reports drills

# Regenerate dashboards/*.json from dashboards/build.py (tests fail when they differ).
dashboards: install
	$(BIN)/python dashboards/build.py

bench-ingest: services
	$(BIN)/python -m bench.ingest

# Every benchmark (ingest, alert latency, geofences, edge, dashboard and API queries), then bench/RESULTS.md (bench/__main__.py).
.PHONY: bench
bench: services
	$(BIN)/bondwatch db migrate
	$(BIN)/python -m bench

# Fault drills under a steady simulated load (docs/drills.md): about 19 min, 10 of them the unreachable broker.
# A private broker and PostgreSQL cluster are made for the run; mounts a small tmpfs (root). Results in
# var/bench/drills.json.
.PHONY: drills
drills: services
	$(BIN)/python -m drills

# Property-based and fuzz tests at the `fuzz` profile (docs/fuzzing.md): five times the cases `make test` runs
# (two fifths) on the decoders and the ingest validator: 144,650 cases; schemathesis at 60 examples per operation.
.PHONY: fuzz
fuzz: services
	BONDWATCH_FUZZ_PROFILE=fuzz $(BIN)/pytest -q tests/fuzz

clean: services-down
	rm -rf var $(VENV)
