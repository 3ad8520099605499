# make demo: the main job on a built-in local fleet.  make test: lint and the whole suite.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install system-packages test lint bench demo docs clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "hotconf needs Python 3.11 or newer; found " + sys.version.split()[0])'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	@touch $(STAMP)

system-packages:
	@scripts/ensure-system-packages

lint: install
	$(VENV)/bin/ruff check hotconf controller agent tests bench
	$(VENV)/bin/mypy

test: install system-packages lint
	$(PY) -m pytest -q

bench: install system-packages
	$(PY) -m bench

demo: install
	$(PY) -m controller.demo

docs: install
	$(VENV)/bin/hotconf env --markdown > docs/environment.md

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
