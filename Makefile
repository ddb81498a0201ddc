# Every target builds its own virtual environment, so a fresh clone needs nothing preinstalled.
# Another Python: `make test PYTHON=python3.10` (each Python gets its own environment).
PYTHON ?= python3
# The interpreter's path: $(PYTHON) as found on PATH, else among pyenv's installed versions
# (pyenv's shims run only the versions made global or local), else in pyenv's folders.
PYTHON_EXE := $(shell $(PYTHON) -c 'import sys; print(sys.executable)' 2>/dev/null || \
	PYENV_VERSION="$$(pyenv versions --bare 2>/dev/null | tr '\n' ':')" \
	$(PYTHON) -c 'import sys; print(sys.executable)' 2>/dev/null || \
	ls -d $${PYENV_ROOT:-$$HOME/.pyenv}/versions/*/bin/$(notdir $(PYTHON)) 2>/dev/null | tail -n 1)
ifeq ($(PYTHON),python3)
VENV ?= .venv
else
VENV ?= .venv-$(notdir $(PYTHON))
endif
BIN := $(VENV)/bin
# The development install (make test, compat, bench) and the run-time one (make demo).
STAMP := $(VENV)/.installed
RUN_STAMP := $(VENV)/.installed-run

.PHONY: test fuzz compat demo bench lint clean python

python:
	@test -n "$(PYTHON_EXE)" || { echo "make: cannot run $(PYTHON); install it or pass PYTHON=..." >&2; exit 1; }

$(BIN)/python: | python
	$(PYTHON_EXE) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	@echo "Installing langgraph-agentgit with its development tools into $(VENV) ($$($(BIN)/python -V))..."
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP) $(RUN_STAMP)

# Only what the demo runs on (LangGraph and a few more), with pip's progress shown.
$(RUN_STAMP): pyproject.toml | $(BIN)/python
	@echo "Installing langgraph-agentgit and what it needs to run into $(VENV) ($$($(BIN)/python -V))..."
	$(BIN)/pip install --progress-bar on -e .
	touch $(RUN_STAMP)

lint: $(STAMP)
	$(BIN)/ruff check langgraph_agentgit tests benchmarks examples compat
	$(BIN)/ruff format --check langgraph_agentgit tests benchmarks examples compat
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest -n 2 -q -rs

# Differential fuzzing (tests/fuzz): random operation sequences on our savers and on
# InMemorySaver, compared after every step. `make test` runs 30 fixed sequences on both
# engines; this runs AGENTGIT_FUZZ_EXAMPLES fresh random ones on the SQLite savers, then
# AGENTGIT_FUZZ_POSTGRES_EXAMPLES on the Postgres savers (a Postgres step costs several
# times a SQLite one). Failures are kept in .hypothesis/fuzz and replayed first next time.
# Fewer: make fuzz AGENTGIT_FUZZ_EXAMPLES=300 AGENTGIT_FUZZ_POSTGRES_EXAMPLES=50
# The same sequences on every run of a commit (what CI runs): AGENTGIT_FUZZ_SEEDED=1
AGENTGIT_FUZZ_EXAMPLES ?= 2000
AGENTGIT_FUZZ_POSTGRES_EXAMPLES ?= 300
fuzz: $(STAMP)
	AGENTGIT_FUZZ_ENGINES=sqlite AGENTGIT_FUZZ_EXAMPLES=$(AGENTGIT_FUZZ_EXAMPLES) \
		$(BIN)/python -m pytest -n 2 -q -rs tests/fuzz
	AGENTGIT_FUZZ_ENGINES=postgres AGENTGIT_FUZZ_EXAMPLES=$(AGENTGIT_FUZZ_POSTGRES_EXAMPLES) \
		$(BIN)/python -m pytest -n 2 -q -rs tests/fuzz

# LangGraph's own checkpointer-parametrized tests (from the sdist of the installed langgraph,
# downloaded into $(COMPAT_CACHE)) against our savers, SqliteSaver alongside for reference.
# A subset: make compat COMPAT_TESTS="tests/test_pregel.py -k fork"
COMPAT_CACHE := .compat
COMPAT_TESTS ?= tests
compat: $(STAMP)
	$(BIN)/python compat/prepare.py --cache $(COMPAT_CACHE)
	cd $(COMPAT_CACHE)/run && $(abspath $(BIN))/python -m pytest -n 2 -q -rfE $(COMPAT_TESTS)

demo: $(RUN_STAMP)
	$(BIN)/agentgit demo

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run

clean:
	rm -rf .venv .venv-* .pytest_cache .mypy_cache .ruff_cache $(COMPAT_CACHE)
