# Two entry points for a fresh machine (see README):
#   make demo   set up .venv, then run the pipeline on the bundled default data (dvc repro)
#   make test   set up .venv, then run the test suite
# Python 3.11 or 3.12: `make test PYTHON=python3.12` builds and uses .venv-python3.12 beside .venv.
PYTHON ?= python3
VENV ?= $(if $(filter python3,$(PYTHON)),.venv,.venv-$(notdir $(PYTHON)))
BIN := $(VENV)/bin
STAMP := $(VENV)/.lic-installed

.PHONY: setup demo test bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)

# The pipeline's flows report to one Prefect server: PREFECT_API_URL if set (a server you run,
# e.g. `prefect server start`, to watch in its UI), else one that flows/server.py starts for the run.
# dvc.yaml follows the profile in params.yaml (flows/stages.py writes it; unchanged for the demo profile).
demo: setup
	$(BIN)/python -m flows.stages
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m flows.server $(BIN)/dvc repro
	$(BIN)/dvc metrics show

test: setup
	PREFECT_HOME=$$(mktemp -d) $(BIN)/python -m pytest -q

bench: setup
	$(BIN)/python bench/codec_speed.py

clean:
	rm -rf $(VENV)
