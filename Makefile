# Entry points on a fresh machine (see README):
#   make demo   set up .venv, then run the demo profile on the bundled photos (dvc repro)
#   make test   set up .venv, then run the test suite
#   make zoo    the field route: Kodak and DIV2K, CompressAI's pretrained bases, phases 2-4, the report
#   make run PROFILE=NAME   any profile of profiles/;  make repro   params.yaml as it is
#   make docs   the docs site in build/site/
# Python 3.11 or 3.12: `make test PYTHON=python3.12` builds and uses .venv-python3.12 beside .venv.
PYTHON ?= python3
VENV ?= $(if $(filter python3,$(PYTHON)),.venv,.venv-$(notdir $(PYTHON)))
BIN := $(VENV)/bin
STAMP := $(VENV)/.lic-installed
PROFILE ?= demo

.PHONY: setup lock demo zoo run repro test docs bench estimate clean

# Every dependency at the exact version of requirements.lock, checked against its hashes; then lic
# itself. Without the lock, `pip install -e '.[test]'` takes pyproject.toml's ranges. Refresh the
# lock after a change to pyproject.toml with `make lock` (uv resolves it for Python 3.11 and 3.12).
$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

lock:
	$(PYTHON) -m pip install --quiet --target .uv uv==0.13.9
	PYTHONPATH=.uv .uv/bin/uv pip compile pyproject.toml --extra test --universal --generate-hashes \
		--python-version 3.11 --quiet -o requirements.lock

setup: $(STAMP)

# The profile becomes params.yaml (never over edits of your own) and dvc.yaml is written for it
# (flows/stages.py); then DVC runs the stages that are not up to date. The flows report to one
# Prefect server: PREFECT_API_URL if set, else one that flows/server.py starts for the run.
define pipeline
	$(BIN)/python -m flows.stages $(1)
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m flows.server $(BIN)/dvc repro
	$(BIN)/dvc metrics show
	@echo "report: reports/$$($(BIN)/python -c 'import yaml; print(yaml.safe_load(open("params.yaml"))["profile"])')/README.md"
endef

demo: setup
	$(call pipeline,demo)

zoo: setup
	$(call pipeline,zoo)

run: setup
	$(call pipeline,$(PROFILE))

repro: setup
	$(call pipeline,)

# the files on as many workers as there are cores (pytest-xdist): stages mostly start Python and torch;
# the slowest 15 tests are printed last (the suite's budget: CONTRIBUTING.md)
test: setup
	PREFECT_HOME=$$(mktemp -d) $(BIN)/python -m pytest -q -n auto --dist loadfile --durations=15

# The docs site, in strict mode (a broken link or a missing page fails): build/site/index.html
docs: setup
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

# Expected time of each profile, from its stage list and measured throughputs (flows/estimate.py)
estimate: setup
	$(BIN)/python -m flows.estimate

bench: setup
	$(BIN)/python bench/codec_speed.py

clean:
	rm -rf $(VENV)
