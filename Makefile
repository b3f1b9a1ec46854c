# Two entry points, each creating its own virtualenv on a fresh machine.
#   make demo   set up, then run the main job (edirecon run) on sample_edi/
#   make test   set up, then run the whole test suite
#   make lint   set up, then ruff (lint and format check) and mypy (strict on parsers/ and engine/decide/)
#   make golden rewrite every golden output from the current code; review `git diff` before committing
#   make test-fast  the suite without the tests marked slow, for local work (docs/testing.md)
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: demo test lint golden setup bench clean

$(BIN)/edirecon: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	# the package's bytecode, as a wheel's install compiles it: an editable install does not, and with
	# PYTHONDONTWRITEBYTECODE set every command would compile the modules it imports again (~36 ms)
	$(BIN)/python -m compileall -q -x '/(\.venv|build|bench|tests|out)/' .
	touch $@

setup: $(BIN)/edirecon

# the main job: the credit-balance engine on the sample scenarios (embedded SQLite, ./edirecon.db)
demo: setup
	$(BIN)/edirecon run sample_edi/ --out out/

.PHONY: test-fast
test-fast: setup
	$(BIN)/python -m pytest -m "not slow"

test: setup
	$(BIN)/python -m pytest

# mypy reads the package from build/mypy ([tool.mypy] in pyproject.toml): build/mypy/edirecon holds
# a link to each top-level module and subpackage of the root (not to the root itself, whose build/
# would make a loop); made afresh each time, so a module added or moved is seen
lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	rm -rf build/mypy/edirecon && mkdir -p build/mypy/edirecon
	for part in *.py $$(dirname */__init__.py); do ln -s ../../../$$part build/mypy/edirecon/$$part; done
	$(BIN)/mypy

# the golden tests in update mode: each rewrites its goldens, then checks them (corpus goldens only
# where the corpus is; twice in a row gives no diff)
GOLDEN_TESTS = tests/golden/test_golden.py tests/golden/test_golden_outputs.py tests/golden/test_golden_x12.py \
	tests/golden/test_corpus.py::test_corpus_summary_matches_golden
golden: setup
	EDIRECON_UPDATE_GOLDENS=1 $(BIN)/python -m pytest -q $(GOLDEN_TESTS)

bench: setup
	$(BIN)/python bench/bench_parse.py
	$(BIN)/python bench/bench_run.py
	$(BIN)/python bench/bench_queue.py
	$(BIN)/python bench/bench_hostile.py
	$(BIN)/python bench/bench_workflow.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
