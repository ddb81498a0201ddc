# Every target builds its own virtual environment, so a fresh clone needs nothing preinstalled.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test compat demo bench lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check langgraph_agentgit tests benchmarks examples compat
	$(BIN)/ruff format --check langgraph_agentgit tests benchmarks examples compat
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest -n 2 -q

# LangGraph's own checkpointer-parametrized tests (from the sdist of the installed langgraph,
# downloaded into $(COMPAT_CACHE)) against our savers, SqliteSaver alongside for reference.
# A subset: make compat COMPAT_TESTS="tests/test_pregel.py -k fork"
COMPAT_CACHE := .compat
COMPAT_TESTS ?= tests
compat: $(STAMP)
	$(BIN)/python compat/prepare.py --cache $(COMPAT_CACHE)
	cd $(COMPAT_CACHE)/run && $(abspath $(BIN))/python -m pytest -n 2 -q -rfE $(COMPAT_TESTS)

demo: $(STAMP)
	$(BIN)/agentgit demo

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache $(COMPAT_CACHE)
