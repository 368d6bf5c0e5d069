"""Peak memory of one step, per high-resolution pixel (run in a fresh process each).

    .venv/bin/python benchmarks/step_memory.py N KIND [BUNDLE]

prints one JSON line: the resident memory the state adds (initialise) and the
peak the step adds above that (its transients and the outputs it returns), both
in bytes, measured with the process's resident set (VmRSS / VmHWM of
/proc/self/status), on synthetic all-land N x N inputs, float32. KIND is monthly
or yearly. `tests/test_memory.py` runs it at two sizes and checks the growth is
linear within the budget; `make bench` reports 1025², 2050² and 4100².
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch


def _status(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"/proc/self/status has no {key}")


def _reset_peak() -> None:
    # Writing 5 to clear_refs resets VmHWM to the current VmRSS (Linux >= 4.0).
    Path("/proc/self/clear_refs").write_text("5")


def main() -> None:
    n, kind = int(sys.argv[1]), sys.argv[2]
    bundle = Path(sys.argv[3]) if len(sys.argv) > 3 else Path(__file__).parents[1] / "weights/demo"
    sys.path.insert(0, str(Path(__file__).parent))
    from test_step import _inputs

    from landbc.emulator.api import BoundaryConditionEmulator

    torch.set_num_threads(1)  # per-thread scratch would be part of the fixed workspace
    grid, static, priors, forcing = _inputs(n)
    emu = BoundaryConditionEmulator.from_bundle(bundle, dtype="float32")
    start = 12 if kind == "yearly" else 5
    # a first step, on a small domain, runs TorchScript's profiling passes
    warm = _inputs(260)
    emu.initialise(warm[0], warm[1], warm[2], 2015, start)
    emu.step(warm[3])
    emu.initialise(grid, static, priors, 2015, start)
    inputs = sum(np.asarray(v).nbytes for d in (static, priors, forcing) for v in d.values())
    before = _status("VmRSS")
    _reset_peak()
    out = emu.step(forcing)
    peak = _status("VmHWM")
    print(json.dumps({
        "n": n, "kind": kind, "pixels": n * n,
        "host_inputs_bytes": inputs,
        "step_peak_above_state_bytes": peak - before,
        "outputs_bytes": sum(v.numel() * v.element_size() for v in out.fields.values()),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
