# conf-server: two commands for a new user, `make run` and `make test`.
# Everything a run or a test needs is installed from here, so a clean clone works.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Debian packages the test suite drives: sipp (sip-tester), espeak-ng and sox for prompts,
# a PostgreSQL server for the store's PostgreSQL test.
DEBS   := sip-tester espeak-ng sox postgresql
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test install build-deps system-deps lint typecheck unit prompts bench clean fuzz

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# The install compiles conf_server/runtime/_batchio.c: it needs gcc and the Python headers,
# installed from Debian when missing (a Python built from source, like pyenv's, has its own).
HEADERS_OK := $(PYTHON) -c "import os, sysconfig; \
	raise SystemExit(not os.path.exists(os.path.join(sysconfig.get_paths()['include'], 'Python.h')))"

build-deps:
	@command -v gcc >/dev/null && $(HEADERS_OK) || { \
	  echo "installing a C compiler and the Python headers (gcc python3-dev)"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq gcc python3-dev; }

$(STAMP): pyproject.toml conf_server/runtime/_batchio.c | build-deps $(BIN)/python
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@

install: $(STAMP)

## Start the server on an embedded SQLite database with the demo meeting.
run: $(STAMP)
	$(BIN)/conf-server run --demo

system-deps:
	@missing=""; \
	for pkg in $(DEBS); do dpkg -s $$pkg >/dev/null 2>&1 || missing="$$missing $$pkg"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

## Run the whole suite: lint, types, unit and integration tests.
## pytest exits 5 when it collected no test; make turns any non-zero exit into a failure.
test: system-deps $(STAMP) lint typecheck
	$(BIN)/python -m pytest

unit: $(STAMP)
	$(BIN)/python -m pytest -m "not integration"

## Fuzz every parser target for FUZZ_SECONDS each (tests/fuzz); the corpus grows in var/fuzz/,
## crashes are saved in tests/data/fuzz/crashes/ and make exits non-zero when there is any.
FUZZ_SECONDS ?= 600
FUZZ_TARGETS ?= sip_udp sip_tcp sdp digest media
fuzz: $(STAMP)
	@status=0; for target in $(FUZZ_TARGETS); do \
	  $(BIN)/python -m tests.fuzz $$target --seconds $(FUZZ_SECONDS) --corpus var/fuzz/$$target \
	    || status=1; \
	done; exit $$status

## Regenerate the English prompt files (espeak-ng + sox); the results are committed.
prompts: system-deps $(STAMP)
	$(BIN)/python -m conf_server.prompts_build config/prompts/en

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
