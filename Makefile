# firesmoke: two commands on a fresh machine
#   make demo   generate a synthetic scenario and run the main job on it
#   make test   run the test suite
# Both create .venv first when it is missing (see ci/bootstrap.sh).

VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.firesmoke-installed
OUT    ?= demo-output
PYTEST_ARGS ?=

export MPLBACKEND ?= Agg
export NUMBA_CACHE_DIR ?= $(CURDIR)/.numba_cache

.PHONY: demo test bench lint venv clean

$(STAMP): pyproject.toml constraints.txt ci/bootstrap.sh
	bash ci/bootstrap.sh

venv: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/firesmoke demo --out $(OUT)

test: $(STAMP)
	$(VENV)/bin/ruff check firesmoke tests benchmarks examples
	$(PY) -m pytest -q $(PYTEST_ARGS)

bench: $(STAMP)
	$(VENV)/bin/asv --config benchmarks/asv.conf.json machine --yes
	$(VENV)/bin/asv --config benchmarks/asv.conf.json run --quick --python=same --show-stderr

lint: $(STAMP)
	$(VENV)/bin/ruff check firesmoke tests benchmarks examples

clean:
	rm -rf $(OUT) .pytest_cache .ruff_cache .numba_cache
