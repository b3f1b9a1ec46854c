# Two entry points, each creating its own virtualenv on a fresh machine.
#   make demo   set up, then run the main job on sample_edi/
#   make test   set up, then run the whole test suite
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: demo test setup bench clean

$(BIN)/edirecon: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

setup: $(BIN)/edirecon

# sample_edi/broken-file/ is broken on purpose, so `parse` exits 1 there (0 and 1 are both fine)
demo: setup
	$(BIN)/edirecon parse --summary sample_edi/ || [ $$? -eq 1 ]

test: setup
	$(BIN)/python -m pytest

bench: setup
	$(BIN)/python bench/bench_parse.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
