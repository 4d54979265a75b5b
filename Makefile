# make demo   -> set up .venv and run the demo on SmolLM2-135M (CPU is enough)
# make test   -> set up .venv and run the test suite (what CI runs)
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?= -m "not slow and not gpu"

.PHONY: setup demo test lint bench

$(VENV)/.installed: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $@

setup: $(VENV)/.installed

demo: setup
	$(BIN)/genie models pull smollm2
	$(BIN)/genie run examples/pipelines/rlhf_smollm2.yaml

test: setup
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check .

bench: setup
	$(BIN)/python bench/train_throughput.py
