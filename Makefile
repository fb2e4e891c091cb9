# The two commands of the quick start: `make run` and `make test`.
# Everything else here is what they need on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
STATE  ?= $(CURDIR)/.state
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test setup system-deps bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)

# System packages the tests need (real clients, services); a no-op when present.
system-deps:
	bash scripts/system-deps.sh

# The main job: the CIM server on the embedded backend, with a demo guest on first run.
run: setup
	VMPROVIDER_STATE_DIR=$(STATE) $(BIN)/vmprovider serve --demo --bind 127.0.0.1 --certs-dir $(STATE)/certs

# Set up and pass the tests. pytest's "no tests ran" (exit 5) fails the run.
test: setup system-deps
	env -u REQUESTS_CA_BUNDLE -u CURL_CA_BUNDLE $(BIN)/python -m pytest -q $(PYTEST_ARGS)

bench: setup
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
