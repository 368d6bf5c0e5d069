"""The safetensors readers against malformed files (issue 11): the Python reader
(emulator/safetensors.py) and the C++ one (cpp/src/safetensors.cpp, through the C ABI's
landbc_load_restart) refuse each file of tests/safetensors_corpus.py with a clear
message naming the file, never with a crash, a MemoryError or an allocation of the
size a file claims; the handle keeps working afterwards.

The C++ reader is reached with ctypes from LANDBC_LIB (default build/cpp/liblandbc.so)
in a subprocess, so that a crash fails the test, not the session; without the library
these tests skip, or fail under LANDBC_REQUIRE_CPP=1 as `make test` sets."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from cabi import require_lib

from landbc.emulator import safetensors

sys.path.insert(0, str(Path(__file__).resolve().parent))
from safetensors_corpus import malformed, valid_files  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
BUNDLE = REPO / "weights" / "demo"
LANDBC_OK, LANDBC_ERR_ARGUMENT, LANDBC_ERR_IO = 0, 1, 2
CASES = malformed()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("malformed")
    paths = {}
    for name, raw, _ in CASES:
        paths[name] = d / f"{name}.safetensors"
        paths[name].write_bytes(raw)
    for name, raw in valid_files().items():
        paths[f"valid_{name}"] = d / f"valid_{name}.safetensors"
        paths[f"valid_{name}"].write_bytes(raw)
    return paths


@pytest.mark.parametrize("name,raw,expected", CASES, ids=[c[0] for c in CASES])
def test_python_reader_refuses(corpus, name, raw, expected):
    path = corpus[name]
    with pytest.raises((ValueError, OSError)) as err:
        safetensors.load(path)
    assert re.search(expected, str(err.value)), str(err.value)
    assert str(path) in str(err.value)


def test_python_reader_reads_the_valid_files(corpus):
    for name in ("valid_restart", "valid_remap"):
        tensors, meta = safetensors.load(corpus[name])
        assert tensors and meta["format"].startswith("landbc-")
        assert safetensors.load_metadata(corpus[name]) == meta
    tensors, _ = safetensors.load(corpus["valid_restart"])
    assert tensors["state.mask"].dtype == torch.bool and tensors["empty"].shape == (0, 3)
    assert tensors["state.lai"].dtype == torch.bfloat16 and tensors["scale"].shape == ()


def test_python_reader_allocates_nothing_for_a_claimed_huge_tensor(corpus):
    """2^60 bytes claimed by an 8-byte body: refused from the header, nothing read."""
    import tracemalloc

    tracemalloc.start()
    with pytest.raises(ValueError, match="run past"):
        safetensors.load(corpus["tensor_of_2e60_bytes"])
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 1 << 20


# The child: opens the demo bundle, loads every file given as a restart, prints one
# JSON line of (status, message) per file, then checks that the handle still answers.
CHILD = r"""
import ctypes, json, sys
from ctypes import byref, c_char_p, c_double, c_int, c_void_p
lib = ctypes.CDLL(sys.argv[1])
lib.landbc_last_error.restype = c_char_p
lib.landbc_open.argtypes = [c_char_p, c_char_p, c_char_p, ctypes.POINTER(c_void_p)]
lib.landbc_load_restart.argtypes = [c_void_p, c_char_p]
lib.landbc_resolution.argtypes = [c_void_p, ctypes.POINTER(c_double), ctypes.POINTER(c_int)]
lib.landbc_close.argtypes = [ctypes.POINTER(c_void_p)]
h = c_void_p()
rc = lib.landbc_open(sys.argv[2].encode(), b"cpu", b"float32", byref(h))
assert rc == 0, lib.landbc_last_error()
out = {}
for path in sys.argv[3:]:
    rc = lib.landbc_load_restart(h, path.encode())
    out[path] = [rc, (lib.landbc_last_error() or b"").decode("utf-8", "replace")]
res, cf = c_double(), c_int()
out["handle_ok"] = lib.landbc_resolution(h, byref(res), byref(cf)) == 0 and res.value > 0
out["closed"] = lib.landbc_close(byref(h)) == 0
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def cpp_results(corpus) -> dict:
    lib = require_lib()
    args = [sys.executable, "-c", CHILD, str(lib), str(BUNDLE), *map(str, corpus.values())]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, (
        f"the C++ reader's process died ({proc.returncode}):\n{proc.stderr[-4000:]}"
    )
    return json.loads(proc.stdout.splitlines()[-1])


@pytest.mark.parametrize("name,raw,expected", CASES, ids=[c[0] for c in CASES])
def test_cpp_reader_refuses(corpus, cpp_results, name, raw, expected):
    rc, message = cpp_results[str(corpus[name])]
    assert rc in (LANDBC_ERR_ARGUMENT, LANDBC_ERR_IO), (rc, message)
    assert re.search(expected, message), message
    assert str(corpus[name]) in message


def test_cpp_reader_reads_the_valid_files_and_the_handle_survives(corpus, cpp_results):
    """The valid files parse (refused only later, for not being this bundle's restart),
    and after every refusal the handle still answers and closes."""
    reader = "not a safetensors file|data_offsets|tensors cover|BOOL expected|shape|dtype"
    for name in ("valid_restart", "valid_remap"):
        rc, message = cpp_results[str(corpus[name])]
        assert rc == LANDBC_ERR_ARGUMENT and not re.search(reader, message), message
    assert cpp_results["handle_ok"] and cpp_results["closed"]
