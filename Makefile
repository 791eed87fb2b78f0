# make run   - the main job: the example live suite against the simulated cluster
# make test  - lint, type-check and the whole test suite
# make bench - the benchmarks under benchmarks/

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

COUNTERS := --counter 'intents.*.resolution.*.item_scraped.*'
TOTALS := --totals 'intents.*.resolution.*.item_scraped.*.item_sent' \
          --totals 'intents.*.resolution.*.received'

.PHONY: run replay test lint bench install

# The state engine is compiled (mypyc) at install; after a change to it the
# source runs instead, with a warning, until a reinstall (`make install`)
# compiles it again (pytest_livecluster/core/_native.py says why).
COMPILED := pytest_livecluster/core/_fastpath.py pytest_livecluster/core/_paths.py pytest_livecluster/core/_state.py pytest_livecluster/methodology/_kernels.py

install: $(STAMP)

# The writer kit (writer/, `import livecluster`) is a distribution of its own that the
# plugin depends on; it is installed from the tree first.
$(STAMP): pyproject.toml setup.py build_backend/livecluster_build.py $(COMPILED) writer/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ./writer
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/python -m pytest example_suite --live-cluster=sim --live-report=out/livecluster.json \
		--live-html=out/livecluster.html

replay: $(STAMP)
	$(BIN)/livecluster state file:example_suite/recordings/staging-sample.ndjson \
		$(COUNTERS) $(TOTALS) --indent

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

BENCHMARKS := \
	"bench_ingest.py" \
	"soak_memory.py" \
	"bench_wakeup.py" \
	"bench_unused_plugin.py" \
	"bench_dockerframes.py" \
	"bench_windows.py" \
	"bench_views.py" \
	"bench_writer_count.py" \
	"bench_docker_backlog.py --containers 6 --lines 40000 --mode pytest --rounds 3" \
	"bench_docker_backlog.py --containers 10 --lines 50000 --mode collector" \
	"bench_docker_backlog.py --containers 1 --lines 50000 --mode collector --rounds 3"

# Every benchmark runs, in one go; the ones that missed their target are listed at the end.
bench: $(STAMP)
	@missed=""; for b in $(BENCHMARKS); do \
		echo "== benchmarks/$$b"; \
		$(BIN)/python benchmarks/$$b || missed="$$missed\n  benchmarks/$$b"; \
	done; \
	if [ -n "$$missed" ]; then printf "missed a target or failed:$$missed\n"; exit 1; fi; \
	echo "every benchmark met its target"
