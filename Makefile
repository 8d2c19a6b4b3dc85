# Two commands for a fresh machine (Python >= 3.10):
#   make book   install everything into .venv and build the book into _build/html
#   make test   install everything into .venv and run the whole test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The book and the tests execute the chapters at this scale (ci | full | paper).
export TXTHEORY_SCALE ?= ci

.PHONY: install book book-full test unit chapters chapters-alt book-check clean

install: $(STAMP)

# torch first and pinned (constraints.txt), so pip takes the CPU wheel, never CUDA.
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -c constraints.txt torch
	$(BIN)/pip install --quiet -c constraints.txt -e '.[book,test]'
	touch $@

book: $(STAMP)
	$(BIN)/jupyter-book build . -W -n --keep-going

# The book at full scale, from the committed results/ (a separate output folder, since
# the execution cache does not know the scale).
book-full: $(STAMP)
	rm -rf _build/full
	TXTHEORY_SCALE=full $(BIN)/jupyter-book build . -W -n --keep-going --path-output _build/full

unit: $(STAMP)
	$(BIN)/pytest tests

# Every chapter under nbval, read straight from its .md (see conftest.py).
chapters: $(STAMP)
	$(BIN)/pytest --nbval-lax --nbval-current-env book

# The chapters again in a second numerical environment, so an assert that holds only in
# this machine's last bits fails here: torch's kernels for a lower instruction set than
# the CPU's (avx2 on an AVX512 machine, default otherwise), MKL held to AVX2, one thread,
# and a fresh results cache (the committed full/paper entries copied in, no ci entry), so
# every ci experiment trains again in this environment.
ALT_ENV = ATEN_CPU_CAPABILITY=$$($(BIN)/python -c "import torch; print('avx2' if torch.backends.cpu.get_cpu_capability() == 'AVX512' else 'default')") \
	MKL_ENABLE_INSTRUCTIONS=AVX2 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
ALT_RESULTS := _build/alt-results
chapters-alt: $(STAMP)
	rm -rf $(ALT_RESULTS) && mkdir -p $(ALT_RESULTS) && cp -r results/. $(ALT_RESULTS)/
	find $(ALT_RESULTS) -name 'ci-*.json' -delete
	$(ALT_ENV) $(BIN)/python tests/fingerprint.py
	$(BIN)/python tests/fingerprint.py
	$(ALT_ENV) TXTHEORY_RESULTS=$(ALT_RESULTS) $(BIN)/pytest --nbval-lax --nbval-current-env book

# A clean build (a stale _build can hide a failure), a check of the HTML, and every page
# opened offline in headless Chromium (screenshots in _build/screenshots).
book-check: $(STAMP)
	rm -rf _build
	$(BIN)/jupyter-book build . -W -n --keep-going
	$(BIN)/python tests/check_book_html.py _build/html
	$(BIN)/pytest tests/test_browser.py -rs

test: unit chapters chapters-alt book-check book-full

clean:
	rm -rf _build .pytest_cache
