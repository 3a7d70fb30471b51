# The two commands: `make book` and `make test`. Both create .venv when missing.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt | cksum | cut -d' ' -f1)
NOTEBOOKS = $(shell $(PY) tests/book_files.py notebooks)
STAGE := bash .ci/stage

.PHONY: setup book test lint unit nbval build html-check stripped browser lab bench clean

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
book: setup
	$(VENV)/bin/jupyter-book build . -W -n --keep-going
	@echo "The book is at file://$(CURDIR)/_build/html/index.html"

## make test: everything CI checks, stage by stage, with a timing summary
test: setup
	@rm -f _build/timings.txt
	@$(STAGE) lint $(MAKE) --no-print-directory lint
	@$(STAGE) stripped $(MAKE) --no-print-directory stripped
	@$(STAGE) unit $(MAKE) --no-print-directory unit
	@$(STAGE) nbval $(MAKE) --no-print-directory nbval
	@$(STAGE) build $(MAKE) --no-print-directory build
	@$(STAGE) browser $(MAKE) --no-print-directory browser
	@echo "== time per stage ==" && cat _build/timings.txt

lint: setup
	$(VENV)/bin/ruff check siamese_lib tests benchmarks book
	$(VENV)/bin/check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml

stripped: setup
	$(VENV)/bin/nbstripout --verify book/*.ipynb

unit: setup
	$(VENV)/bin/pytest -q -m "not browser" -n 2 --doctest-modules siamese_lib tests

nbval: setup
	$(VENV)/bin/pytest -q --nbval-lax --nbval-current-env \
		--nbval-cell-timeout=300 $(NOTEBOOKS)

build: setup
	$(VENV)/bin/jupyter-book build . -W -n --keep-going

browser: setup
	$(VENV)/bin/pytest -q -m browser tests/test_browser.py

## make lab: open the notebooks in JupyterLab
lab: setup
	$(VENV)/bin/jupyter lab book/

## make bench: speed and quality benchmarks (not part of make test)
bench: setup
	$(PY) benchmarks/bench_mining.py
	$(PY) benchmarks/bench_train.py

clean:
	rm -rf _build .pytest_cache .ruff_cache .hypothesis
