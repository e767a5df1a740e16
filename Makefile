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

.PHONY: setup graphiql chromium demo test test-fast neo4j neo4j-stop bench bench-scale bench-data bench-load bench-engine bench-serve lint clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@command -v java >/dev/null || { echo "Java 17+ is required (apt-get install openjdk-17-jre-headless)"; exit 1; }
	@command -v mvn >/dev/null || { echo "Maven is required (apt-get install maven)"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	PYTHONWARNINGS="ignore:Editable installation" $(BIN)/python -m pip install --quiet -e '.[dev]'  # setuptools' flat-layout notice
	@rm -f $(VENV)/.installed-*
	@touch $@

# GraphiQL's browser files (React, ReactDOM, GraphiQL) from the npm registry into $(CACHE)/graphiql:
# the API serves them itself, so GraphiQL works offline (api/assets.py; a no-op once installed).
graphiql: setup
	@$(BIN)/python -m api.assets

# Debian's Chromium for the widget's browser test (Playwright drives it; no browser download).
chromium:
	@command -v chromium >/dev/null || { (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null || \
	  { echo "could not install Debian's chromium (apt-get install chromium)"; exit 1; }; }

neo4j: setup
	graphrec neo4j start

neo4j-stop: setup
	graphrec neo4j stop

# The demo: MovieLens-100K in Neo4j, neighbours materialised, then the API served at once with
# anonymous reads (GraphiQL at /graphql, the widget at /demo, the dashboard at /dashboard) while
# the first GNN trains in the background (`graphrec status`: stage, epoch, ETA; the API switches
# to the promoted version by itself). Until then answers come from the Cypher paths, content and
# popularity (modelVersion null); the training's export waits for the API's warm-up (--after-api),
# so the first answers do not share Neo4j with it. A second run reuses everything (loads are
# idempotent, training is skipped when nothing changed). Ctrl-C stops the API; training goes on (var/logs/train.log).
demo: neo4j graphiql
	@graphrec serve --check
	graphrec load movielens
	graphrec refresh-neighbours --if-changed
	graphrec demo-summary
	graphrec train --background --after-api
	@echo ""
	@echo "Example queries (anonymous reads are on for the demo):"
	@echo "  curl -s localhost:8000/graphql -H 'Content-Type: application/json' \\"
	@echo "    -d '{\"query\": \"{ recommendations(userId: \\\"196\\\", first: 5) { modelVersion items { rank sources reason item { title } } } }\"}'"
	@echo "  open http://127.0.0.1:8000/graphql (GraphiQL), /dashboard, /demo; Neo4j Browser at http://127.0.0.1:7474/browser/"
	GRAPHREC_API_ANONYMOUS_READ=true GRAPHREC_API_GRAPHIQL=true graphrec serve

test: setup graphiql chromium
	$(BIN)/python -m pytest -q

test-fast: setup
	$(BIN)/python -m pytest -q -m "not integration and not e2e and not browser and not faults"

# Benchmarks (JSON reports and plots in bench/reports/). `make bench` runs them all at sizes that
# fit in about 15 minutes; `make bench-scale` runs the 1M sizes. The engine and serving benchmarks
# use the demo graph, loaded and trained here when it is not yet (both steps are idempotent).
bench-data: neo4j
	graphrec load movielens
	graphrec refresh-neighbours
	graphrec train

bench: bench-data
	$(BIN)/python -m bench

bench-scale: bench-data
	$(BIN)/python -m bench --scale

# Soak: mixed traffic at a steady rate against one API process, Neo4j restarted at half time, on a
# scratch Neo4j of its own (var/soak). `make soak SOAK_MINUTES=2` for a quick run.
SOAK_MINUTES ?= 20
.PHONY: soak
soak: setup
	$(BIN)/python -m bench.soak --minutes $(SOAK_MINUTES)

# GraphQL fuzzing: hypothesis-graphql cases (valid, one violation, arbitrary JSON variables; read,
# write, interact and no keys) against one `graphrec serve` on a scratch Neo4j (var/fuzz) with the
# tiny catalogue; prints answers by status and code, fails on INTERNAL or a 5xx but OVERLOADED.
FUZZ_CASES ?= 10000
.PHONY: fuzz
fuzz: setup
	$(BIN)/python -m bench.fuzz --cases $(FUZZ_CASES)

bench-load: setup
	$(BIN)/python -m bench.load --synthetic 5000000

bench-engine: bench-data
	$(BIN)/python -m bench.engine --requests 1000

bench-serve: bench-data
	$(BIN)/python -m bench.serve

.PHONY: bench-train
bench-train: setup
	$(BIN)/python -m bench.train

# Static checks: ruff over everything, mypy over the product and the benchmarks (.ci/run runs this
# after `make test`; the import contract, .importlinter, runs inside `make test`).
lint: setup
	$(BIN)/ruff check graphrec gnn api loaders bench tests
	$(BIN)/mypy graphrec loaders gnn api bench

clean:
	-graphrec neo4j stop
	rm -rf var test-output
