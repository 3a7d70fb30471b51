# The two commands: `make book` and `make test`. Both create .venv when missing.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt | cksum | cut -d' ' -f1)
NOTEBOOKS = $(shell $(PY) tests/book_files.py notebooks)
STAGE := bash .ci/stage
PDF := _build/pdf/siamese-networks-book.pdf
# the HTML book, with the student worksheets beside it (each chapter links to its worksheet)
define BUILD_HTML
	$(VENV)/bin/jupyter-book build . -W -n --keep-going
	rm -rf _build/html/worksheets && cp -r _build/worksheets _build/html/worksheets
endef

.PHONY: setup book test lint unit nbval build html-check stripped browser worksheets times pdf print pdf-check lab bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch first and with pip, at the version pinned in constraints.txt (its one place)
	$(PY) -m pip install --quiet -c constraints.txt torch torchvision
	$(PY) -m pip install --quiet -c constraints.txt -e ".[book,test]"
	rm -f $(VENV)/.installed-*
	touch $@

## make book: execute every notebook and build the HTML book into _build/html
book: worksheets
	$(BUILD_HTML)
	@echo "The book is at file://$(CURDIR)/_build/html/index.html"

## make worksheets: every chapter without its solutions, and a zip of them, in _build/worksheets
worksheets: setup
	rm -rf _build/worksheets
	$(PY) tools/worksheets.py _build/worksheets

## make times: record each chapter's execution time of the last build (book/chapter_times.json)
times: setup
	$(PY) tools/chapter_times.py

## make pdf: the whole book as one PDF, printed from the built HTML (see tools/print_book.py)
pdf: book print

print: setup
	$(PY) tools/print_book.py $(PDF)

## make test: everything CI checks, stage by stage, with a timing summary
test: setup
	@rm -f _build/timings.txt
	@$(STAGE) lint $(MAKE) --no-print-directory lint
	@$(STAGE) stripped $(MAKE) --no-print-directory stripped
	@$(STAGE) unit $(MAKE) --no-print-directory unit
	@$(STAGE) nbval $(MAKE) --no-print-directory nbval
	@$(STAGE) build $(MAKE) --no-print-directory build
	@$(STAGE) browser $(MAKE) --no-print-directory browser
	@$(STAGE) pdf $(MAKE) --no-print-directory print pdf-check
	@echo "== time per stage ==" && cat _build/timings.txt

lint: setup
	$(VENV)/bin/ruff check siamese_lib tests benchmarks tools book
	$(VENV)/bin/check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml

stripped: setup
	$(VENV)/bin/nbstripout --verify book/*.ipynb

unit: setup
	$(VENV)/bin/pytest -q -m "not browser and not pdf" -n 2 --doctest-modules siamese_lib tests

nbval: setup
	$(VENV)/bin/pytest -q --nbval-lax --nbval-current-env \
		--nbval-cell-timeout=300 $(NOTEBOOKS)

build: worksheets
	$(BUILD_HTML)

browser: setup
	$(VENV)/bin/pytest -q -m browser tests/test_browser.py

pdf-check: setup
	$(VENV)/bin/pytest -q -m pdf tests/test_pdf.py

## make lab: open the notebooks in JupyterLab
lab: setup
	$(VENV)/bin/jupyter lab book/

## make bench: speed and quality benchmarks (not part of make test)
bench: setup
	$(PY) benchmarks/bench_mining.py
	$(PY) benchmarks/bench_train.py

clean:
	rm -rf _build .pytest_cache .ruff_cache .hypothesis
