# Two entry points for a fresh machine (see README):
#   make demo   set up .venv, then run the pipeline on the bundled default data (dvc repro)
#   make test   set up .venv, then run the test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.lic-installed

.PHONY: setup demo test bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/dvc repro
	$(BIN)/dvc metrics show

test: setup
	PREFECT_HOME=$$(mktemp -d) $(BIN)/python -m pytest -q

bench: setup
	$(BIN)/python bench/codec_speed.py

clean:
	rm -rf $(VENV)
