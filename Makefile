# firesmoke: two commands on a fresh machine
#   make demo   install firesmoke (runtime deps only), generate a synthetic scenario, run it
#   make test   add the test and docs extras; ruff, the strict docs build, the test suite
# Both create .venv first when it is missing (see ci/bootstrap.sh).

VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.firesmoke-installed
TEST_STAMP := $(VENV)/.firesmoke-installed-test-docs
OUT    ?= demo-output
PYTEST_ARGS ?=
# test files spread over one process per core (pytest-xdist); a file stays in one process,
# so its module fixtures (a scenario, an S3 server, a cluster) are built once
PYTEST_WORKERS ?= auto

export MPLBACKEND ?= Agg
export NUMBA_CACHE_DIR ?= $(CURDIR)/.numba_cache
export NO_MKDOCS_2_WARNING ?= 1

.PHONY: demo test docs bench lint venv clean

$(STAMP): pyproject.toml constraints.txt ci/bootstrap.sh
	bash ci/bootstrap.sh

$(TEST_STAMP): pyproject.toml constraints.txt ci/bootstrap.sh
	bash ci/bootstrap.sh test,docs

venv: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/firesmoke demo --out $(OUT)

test: $(TEST_STAMP)
	$(VENV)/bin/ruff check firesmoke tests benchmarks examples
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --site-dir build/site
	$(PY) -m pytest -q -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

docs: $(TEST_STAMP)
	$(VENV)/bin/mkdocs build --strict --site-dir build/site

bench: $(TEST_STAMP)
	$(VENV)/bin/asv --config benchmarks/asv.conf.json machine --yes
	$(VENV)/bin/asv --config benchmarks/asv.conf.json run --quick --python=same --show-stderr

lint: $(TEST_STAMP)
	$(VENV)/bin/ruff check firesmoke tests benchmarks examples

clean:
	rm -rf $(OUT) build/site .pytest_cache .ruff_cache .numba_cache
