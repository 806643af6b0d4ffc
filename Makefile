# Two commands for a new user: `make demo` (set up, then train the book's chapter-1
# network) and `make test`. Both create the virtual environment .venv on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Offline machines: point NNDL_DATA at a folder with the four MNIST files (make demo
# NNDL_DATA=DIR). nndl itself finds ../shared/datasets/mnist beside this checkout.

.PHONY: setup demo test bench clean

$(BIN)/nndl: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --editable '.[cli,augment,plots,web,sweep,test]'
	touch $@

setup: $(BIN)/nndl

demo: setup
	$(BIN)/nndl train --seed 1

# The browser tests check the page with axe-core (accessibility rules), installed from npm beside the tests.
AXE := node_modules/axe-core/axe.min.js
$(AXE):
	npm install --no-save --no-package-lock --no-audit --no-fund axe-core@4.14.1

test: setup $(AXE)
	$(BIN)/python -m pytest

bench: setup
	$(BIN)/python benchmarks/speed_and_memory.py

clean:
	rm -rf $(VENV)
