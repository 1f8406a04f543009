# Two set-up commands: `make run` and `make test`. Both install what is missing first.
PYTHON ?= python3
# Test processes: one more than the 2 cores the suite is sized for, since many tests wait on
# servers, browsers and ffmpeg and a third process fills those waits.
TEST_WORKERS ?= 3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed
NODE_STAMP = tests/js/node_modules/.installed
WEB_VENDOR = src/reelout/web/static/vendor
WEB_STAMP  = $(WEB_VENDOR)/.installed

.PHONY: run test lint typecheck check install node web docs docs-build screenshots clean

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

# The console's browser libraries: their browser builds are committed in the package's static
# folder, so a wheel built anywhere (even without npm) carries them. With npm, this refreshes
# them from web/package-lock.json (upgrade there, then `make web` and commit the copies).
$(WEB_STAMP): web/package.json $(wildcard web/package-lock.json)
	@if command -v npm >/dev/null; then \
	  (cd web && npm install --silent --no-audit --no-fund) && mkdir -p $(WEB_VENDOR) && \
	  cp web/node_modules/tus-js-client/dist/tus.min.js web/node_modules/hls.js/dist/hls.min.js \
	     web/node_modules/htmx.org/dist/htmx.min.js web/node_modules/uplot/dist/uPlot.iife.min.js \
	     web/node_modules/uplot/dist/uPlot.min.css $(WEB_VENDOR)/ && \
	  for lib in tus-js-client hls.js htmx.org uplot; do \
	    cp web/node_modules/$$lib/LICENSE $(WEB_VENDOR)/$$lib.LICENSE; done && \
	  touch $(WEB_STAMP); \
	else echo "npm not found: the console uses the committed copies of its browser libraries"; fi

web: $(WEB_STAMP)

run: $(STAMP) web
	$(BIN)/reelout serve

test: $(STAMP) node web
	$(BIN)/ruff check src tests docs/hooks.py docs/screenshots.py $(wildcard bench)
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache
	$(MKDOCS) build --quiet
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadgroup

# The docs site (docs/, mkdocs.yml): strict, offline; output in build/docs/ (git-ignored).
MKDOCS = NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs

docs: $(STAMP)
	$(MKDOCS) serve --dev-addr 127.0.0.1:8001

docs-build: $(STAMP)
	$(MKDOCS) build

lint: $(STAMP)
	$(BIN)/ruff check src tests docs/hooks.py docs/screenshots.py $(wildcard bench)
	$(BIN)/ruff format --check src tests docs/hooks.py docs/screenshots.py $(wildcard bench)

typecheck: $(STAMP)
	$(BIN)/mypy

clean:
	rm -rf $(VENV) build/docs tests/js/node_modules web/node_modules $(WEB_STAMP) .pytest_cache .mypy_cache .ruff_cache

# The console pages' screenshots in docs/console/ (needs Debian's chromium and ffmpeg).
screenshots: $(STAMP) web
	$(BIN)/python docs/screenshots.py
