# Two set-up commands: `make run` and `make test`. Both install what is missing first.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed
NODE_STAMP = tests/js/node_modules/.installed

.PHONY: run test lint typecheck check install node clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

$(NODE_STAMP): tests/js/package.json
	@if command -v npm >/dev/null; then \
	  cd tests/js && npm install --silent --no-audit --no-fund && touch node_modules/.installed; \
	else echo "npm not found: the JavaScript client tests will be skipped"; fi

node: $(NODE_STAMP)

run: $(STAMP)
	$(BIN)/reelout serve

test: $(STAMP) node
	$(BIN)/ruff check src tests $(wildcard bench)
	$(BIN)/mypy
	$(BIN)/pytest -n 2 --dist loadgroup

lint: $(STAMP)
	$(BIN)/ruff check src tests $(wildcard bench)
	$(BIN)/ruff format --check src tests $(wildcard bench)

typecheck: $(STAMP)
	$(BIN)/mypy

clean:
	rm -rf $(VENV) tests/js/node_modules .pytest_cache .mypy_cache .ruff_cache
