# graphrec: two commands matter, `make demo` and `make test`. Everything they need is installed
# by the targets below: a virtualenv (outside the repo, reused while pyproject.toml is unchanged),
# Neo4j from Maven Central (jars cached in ~/.cache/graphrec), MovieLens from PyPI (cached).
SHELL := /bin/bash
PYTHON ?= python3
CACHE ?= $(HOME)/.cache/graphrec
VENV ?= $(CACHE)/venv
BIN := $(VENV)/bin
# Re-install when pyproject.toml changes or the checkout moves (the install is editable).
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)-$(shell echo $(CURDIR) | sha1sum | cut -c1-8)
export PATH := $(BIN):$(PATH)

.PHONY: setup demo test test-fast neo4j neo4j-stop bench bench-load lint clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@command -v java >/dev/null || { echo "Java 17+ is required (apt-get install openjdk-17-jre-headless)"; exit 1; }
	@command -v mvn >/dev/null || { echo "Maven is required (apt-get install maven)"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@rm -f $(VENV)/.installed-*
	@touch $@

neo4j: setup
	graphrec neo4j start

neo4j-stop: setup
	graphrec neo4j stop

demo: neo4j
	graphrec load movielens
	graphrec demo-summary

test: setup
	$(BIN)/python -m pytest -q

test-fast: setup
	$(BIN)/python -m pytest -q -m "not integration and not e2e and not browser and not faults"

bench-load: setup
	$(BIN)/python -m bench.load --synthetic 5000000

bench: bench-load

lint: setup
	$(BIN)/ruff check graphrec gnn api loaders bench tests
	$(BIN)/mypy graphrec loaders

clean:
	-graphrec neo4j stop
	rm -rf var test-output
