# Two commands for a fresh machine (Python >= 3.10):
#   make book   install everything into .venv and build the book into _build/html
#   make test   install everything into .venv and run the whole test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The book and the tests execute the chapters at this scale (ci | full | paper).
export TXTHEORY_SCALE ?= ci

.PHONY: install book test unit chapters book-check clean

install: $(STAMP)

# torch first and pinned (constraints.txt), so pip takes the CPU wheel, never CUDA.
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -c constraints.txt torch
	$(BIN)/pip install --quiet -c constraints.txt -e '.[book,test]'
	touch $@

book: $(STAMP)
	$(BIN)/jupyter-book build . -W -n --keep-going

unit: $(STAMP)
	$(BIN)/pytest tests

# Every chapter under nbval, read straight from its .md (see conftest.py).
chapters: $(STAMP)
	$(BIN)/pytest --nbval-lax --nbval-current-env book

# A clean build (a stale _build can hide a failure), a check of the HTML, and every page
# opened offline in headless Chromium (screenshots in _build/screenshots).
book-check: $(STAMP)
	rm -rf _build
	$(BIN)/jupyter-book build . -W -n --keep-going
	$(BIN)/python tests/check_book_html.py _build/html
	$(BIN)/pytest tests/test_browser.py -rs

test: unit chapters book-check

clean:
	rm -rf _build .pytest_cache
