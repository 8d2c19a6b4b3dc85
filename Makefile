# Two commands for a fresh machine (Python >= 3.10):
#   make book   install everything into .venv and build the book into _build/html
#   make test   install everything into .venv and run the whole test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The book and the tests execute the chapters at this scale (ci | full | paper).
export TXTHEORY_SCALE ?= ci

.PHONY: install book book-full test unit chapters test-alt book-check clean

install: $(STAMP)

# torch first and pinned (constraints.txt), so pip takes the CPU wheel, never CUDA.
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -c constraints.txt torch
	$(BIN)/pip install --quiet -c constraints.txt -e '.[book,test]'
	touch $@

book: $(STAMP)
	$(BIN)/jupyter-book build . -W -n --keep-going

# The book at full scale, from the committed results/ only (a missing entry fails rather
# than trains), into a separate output folder, since the execution cache does not know
# the scale.
book-full: $(STAMP)
	rm -rf _build/full
	TXTHEORY_SCALE=full TXTHEORY_CACHE_ONLY=1 $(BIN)/jupyter-book build . -W -n --keep-going --path-output _build/full

unit: $(STAMP)
	$(BIN)/pytest tests

# Every chapter under nbval, read straight from its .md (see conftest.py).
chapters: $(STAMP)
	$(BIN)/pytest --nbval-lax --nbval-current-env book

# The unit tests and the chapters again in a second numerical environment, so an assert
# that holds only in this machine's last bits fails here: torch's kernels one instruction
# set lower, MKL held to AVX2, numpy's SIMD dispatch off, OpenBLAS one core type lower,
# one thread (tests/alt_env.py says which and why), and a fresh results cache (the
# committed full/paper entries copied in, no ci entry), so every ci experiment trains
# again there. fingerprint.py first prints numbers from both environments that differ.
# absolute, since the chapters run in book/
ALT_RESULTS := $(CURDIR)/_build/alt-results
test-alt: $(STAMP)
	rm -rf $(ALT_RESULTS) && mkdir -p $(ALT_RESULTS) && cp -r results/. $(ALT_RESULTS)/
	find $(ALT_RESULTS) -name 'ci-*.json' -delete
	$(BIN)/python tests/fingerprint.py --compare
	ALT_ENV="$$($(BIN)/python tests/alt_env.py)" && test -n "$$ALT_ENV" && \
	env $$ALT_ENV TXTHEORY_RESULTS=$(ALT_RESULTS) $(BIN)/pytest -q tests && \
	env $$ALT_ENV TXTHEORY_RESULTS=$(ALT_RESULTS) $(BIN)/pytest --nbval-lax --nbval-current-env book

# A clean build (a stale _build can hide a failure), a check of the HTML, and every page
# opened offline in headless Chromium (screenshots in _build/screenshots).
book-check: $(STAMP)
	rm -rf _build
	$(BIN)/jupyter-book build . -W -n --keep-going
	$(BIN)/python tests/check_book_html.py _build/html
	$(BIN)/pytest tests/test_browser.py -rs

test: unit chapters test-alt book-check book-full

clean:
	rm -rf _build .pytest_cache
