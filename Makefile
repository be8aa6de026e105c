# Two commands on a fresh machine:
#   make index DIR=~/Pictures   set up a venv and index a folder (downloads the model once)
#   make test                   set up a test venv and run the whole suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The test set-up pins the torch pair that this platform serves from local disk; the package
# itself only asks for a range (torch>=2.3), so users get whatever fits their machine.
TEST_TORCH := torch==2.14.1 torchvision==0.29.1
DIR ?= $(HOME)/Pictures

.PHONY: index test lint bench clean

$(BIN)/mcphotos: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -e .
	touch $@

$(VENV)/.test-installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install $(TEST_TORCH)
	$(BIN)/pip install -e '.[test]'
	touch $@

index: $(BIN)/mcphotos
	$(BIN)/mcphotos index "$(DIR)"

lint: $(VENV)/.test-installed
	$(BIN)/ruff check .

test: $(VENV)/.test-installed
	$(BIN)/ruff check .
	$(BIN)/mypy mcphotos
	$(BIN)/python -m pytest

bench: $(VENV)/.test-installed
	$(BIN)/python bench/index_throughput.py

clean:
	rm -rf $(VENV) build *.egg-info
