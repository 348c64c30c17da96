# The two commands of the README's quick start: `make demo` and `make test`.
# Both create .venv on first use and install everything from PyPI, pinned by constraints.txt.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO   := examples/flights

# Two jobs at once: `make test` installs the project's venv and the MLflow server's venv side
# by side (each mostly waits on downloads), which a fresh CI machine feels most.
MAKEFLAGS += --jobs=2

.PHONY: demo test lint golden bench dist clean

$(STAMP): pyproject.toml constraints.txt $(wildcard backends/*/pyproject.toml examples/*/pyproject.toml)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev,mlflow]' \
		$(foreach d,$(wildcard backends/*/pyproject.toml examples/*/pyproject.toml),-e $(dir $(d)))
	touch $@

# The MLflow tracking server the MLflow tests start: a venv of its own (see
# constraints-mlflow-server.txt); the tests find it through MLCOMPILE_MLFLOW_SERVER.
SERVER_VENV  := .venv-mlflow-server
SERVER_STAMP := $(SERVER_VENV)/.installed

$(SERVER_STAMP): constraints-mlflow-server.txt
	test -x $(SERVER_VENV)/bin/python || $(PYTHON) -m venv $(SERVER_VENV)
	$(SERVER_VENV)/bin/python -m pip install --quiet -c constraints-mlflow-server.txt mlflow
	touch $@

demo: $(STAMP)
	cd $(DEMO) && ../../$(BIN)/mlcompile validate mlcompile.yaml
	cd $(DEMO) && ../../$(BIN)/mlcompile build mlcompile.yaml --backend local --out build
	cd $(DEMO) && ../../$(BIN)/mlcompile run mlcompile.yaml
	@# December drifts from the training months: exit 7 is the expected verdict here
	cd $(DEMO) && ../../$(BIN)/mlcompile monitor mlcompile.yaml --no-retrain; test $$? -eq 7

PY_DIRS := $(wildcard src tests backends benchmarks examples)

lint: $(STAMP)
	$(BIN)/ruff check $(PY_DIRS)
	$(BIN)/ruff format --check $(PY_DIRS)
	$(BIN)/mypy src $(wildcard backends/*/src)
	$(BIN)/lint-imports

test: lint $(SERVER_STAMP)
	MLCOMPILE_MLFLOW_SERVER=$(abspath $(SERVER_VENV))/bin/mlflow $(BIN)/pytest -n 2 --dist loadgroup

golden: $(STAMP)
	$(BIN)/pytest tests -k golden --update-golden

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

# Wheels of mlcompile and every backend in dist/, for an image or a step's packages_to_install
# (the kfp build's requirements.txt pins these versions). Built with the venv's hatchling, so
# offline; SOURCE_DATE_EPOCH makes the same sources give the same wheel bytes.
DIST ?= dist

dist: $(STAMP)
	SOURCE_DATE_EPOCH=$${SOURCE_DATE_EPOCH:-315532800} $(BIN)/python -m pip wheel --quiet \
		--no-deps --no-build-isolation --wheel-dir $(DIST) . $(dir $(wildcard backends/*/pyproject.toml))

clean:
	rm -rf $(VENV) $(SERVER_VENV) build dist .mypy_cache .ruff_cache .pytest_cache
