"""Which floating-point type the nets run in: the one helper that decides (DESIGN.md).

bfloat16 pays only where the device does it natively. Where it does not, torch
still runs it, in a slow fallback: on an AVX2-only CPU a 2048² bf16 matmul ran
at 0.28 GFLOP/s against 77 GFLOP/s in float32, and a monthly step took 37.6 s
instead of 4.5 s; on Sapphire Rapids (AMX) a bf16 GEMM is ≈4× float32. So the
choice is made from evidence about the device, never from its vendor string:

- CUDA: compute capability ≥ 8.0 (bf16 tensor cores), which is what
  `torch.cuda.is_bf16_supported(including_emulation=False)` checks.
- CPU: the bf16 instruction flags (`amx_bf16`, `avx512_bf16`; `bf16`/`svebf16`
  on aarch64) from /proc/cpuinfo or torch's own CPU probe, AND a small bf16 vs
  float32 GEMM timed in this process. Both must agree: a flag is useless if this
  torch build does not use it, and a timing alone is not trusted (on a loaded
  machine a multi-threaded float32 matmul of 64² waited 16 ms for its second
  thread and "lost" to bf16 by 100×). The GEMM runs on one thread for that
  reason, and costs a few milliseconds even where bf16 is 270× slower.

Evidence gathering (`gather_evidence`) and the decision (`decide`) are
separate, so the rule is testable without the machine. `bf16_decision` caches
the result per device for the process; `resolve_dtype` turns what a user asked
for ("auto", "float32", "bfloat16" or a torch dtype) into a torch dtype and a
reason, logging what "auto" chose at INFO and warning, with the measured ratio,
when bfloat16 is requested where it is slow.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import torch

log = logging.getLogger(__name__)

AUTO = "auto"
DTYPE_CHOICES = (AUTO, "float32", "bfloat16")  # what configs and command lines accept
_ALIASES: dict[str | torch.dtype, str] = {
    "auto": AUTO,
    "float32": "float32",
    "fp32": "float32",
    "bfloat16": "bfloat16",
    "bf16": "bfloat16",
    torch.float32: "float32",
    torch.bfloat16: "bfloat16",
}
TORCH_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}

# CPU flags that mean bf16 arithmetic in hardware (x86 in /proc/cpuinfo "flags",
# aarch64 in "Features").
NATIVE_CPU_FLAGS = ("amx_bf16", "avx512_bf16", "bf16", "svebf16")
# bf16 must run a GEMM at least this fast relative to float32 to be chosen: below
# that the nets gain nothing from it and lose precision.
MIN_SPEEDUP = 1.0
# The timed GEMM: a screen at SCREEN_N (a few ms even where bf16 is emulated); where
# a bf16 flag is present and bf16 is within SCREEN_MAX_SLOWDOWN of float32, a second
# measurement at REFINE_N, large enough for AMX/AVX512-BF16 kernels to show their speed
# (≈20 ms there). The GEMMs run on one thread, which the process shares for that time.
SCREEN_N = 128
REFINE_N = 512
SCREEN_MAX_SLOWDOWN = 4.0
REPEATS = 3  # best of
BUDGET_S = 0.01  # per dtype and size: stop repeating once this much time is spent
CUDA_MIN_CAPABILITY = (8, 0)


@dataclasses.dataclass(frozen=True)
class Evidence:
    """What is known about bf16 on one device. Built by `gather_evidence`; tests
    build it by hand."""

    device: str  # "cpu", "cuda:0"
    native_flags: tuple[str, ...] = ()  # CPU: the bf16 flags found
    flags_source: str = ""  # CPU: where they were looked for ("" = nowhere)
    cpu_model: str = ""
    cpu_capability: str = ""  # torch's ATen CPU dispatch level, e.g. "AVX2", "AVX512"
    cuda_capability: tuple[int, int] | None = None
    gemm_n: int | None = None  # side of the timed square GEMM (None: not measured)
    fp32_s: float | None = None  # best time of one float32 GEMM
    bf16_s: float | None = None  # best time of one bfloat16 GEMM
    probe_ms: float = 0.0  # what gathering this evidence cost

    @property
    def device_type(self) -> str:
        return self.device.split(":")[0]

    @property
    def speedup(self) -> float | None:
        """float32 time / bf16 time: > 1 where bf16 is faster (None: not measured)."""
        if not self.fp32_s or not self.bf16_s:
            return None
        return self.fp32_s / self.bf16_s

    def describe_speed(self) -> str:
        s = self.speedup
        if s is None:
            return "not measured"
        how = f"(measured, {self.gemm_n}² GEMM, 1 thread)"
        if s >= 1.0:
            return f"a bf16 GEMM runs {_ratio(s)}× faster than float32 {how}"
        return f"a bf16 GEMM runs {_ratio(1.0 / s)}× slower than float32 {how}"


@dataclasses.dataclass(frozen=True)
class Decision:
    """The dtype "auto" means on a device, and why."""

    dtype: torch.dtype
    reason: str
    evidence: Evidence
    native_note: str = ""  # what the flags or capability say, without the timing

    @property
    def name(self) -> str:
        return dtype_name(self.dtype)


class Resolved(NamedTuple):
    """A requested dtype made concrete: `dtype, reason = resolve_dtype(...)`."""

    dtype: torch.dtype
    reason: str


def _ratio(x: float) -> str:
    return f"{x:.0f}" if x >= 10 else f"{x:.1f}"


def dtype_name(dtype: torch.dtype) -> str:
    """torch.bfloat16 → "bfloat16" (for logs, records and configs)."""
    return str(dtype).removeprefix("torch.")


def parse_dtype(requested: str | torch.dtype, what: str = "dtype") -> str:
    """The requested dtype's name: "auto", "float32" or "bfloat16" (aliases fp32, bf16
    and torch dtypes accepted); anything else is a ValueError naming `what` (the key
    or option it came from)."""
    try:
        name = _ALIASES.get(requested)  # type: ignore[arg-type]
    except TypeError:  # unhashable
        name = None
    if name is None:
        expected = ", ".join(f"'{c}'" for c in DTYPE_CHOICES[:-1]) + f" or '{DTYPE_CHOICES[-1]}'"
        raise ValueError(f"{what}: expected {expected}, found {requested!r}")
    return name


def normalise_device(device: str | torch.device) -> str:
    """A cache key: "cpu", or "cuda:N" with the index made explicit."""
    dev = torch.device(device)
    if dev.type == "cuda" and dev.index is None:
        index = torch.cuda.current_device() if torch.cuda.is_available() else 0
        return f"cuda:{index}"
    if dev.type == "cpu":
        return "cpu"
    return str(dev)


# ------------------------------------------------------------------ evidence


def _cpuinfo() -> tuple[str, set[str], str]:
    """(model name, flags, source) of the first CPU in /proc/cpuinfo, where there is one."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "", set(), ""
    model, flags = "", set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key in ("model name", "cpu model") and not model:
            model = value.strip()
        elif key in ("flags", "features") and not flags:
            flags = set(value.split())
        if not line.strip() and flags:  # end of the first processor's block
            break
    return model, flags, "/proc/cpuinfo"


def _torch_cpu_flags() -> set[str]:
    """bf16 flags as torch's own CPU probe sees them (cpuinfo library; x86 only)."""
    found = set()
    probe = getattr(torch.cpu, "_is_avx512_bf16_supported", None)
    try:
        if probe is not None and probe():
            found.add("avx512_bf16")
    except Exception:  # noqa: BLE001 - a private probe; its absence is not an error
        pass
    return found


def _best_time(fn: Callable[[], object], repeats: int = REPEATS, budget_s: float = BUDGET_S):
    """Best wall time of `fn` after one warm-up call; fewer repeats once `budget_s`
    is spent (a slow path is slow on every call: one timed call says enough)."""
    fn()
    best, spent = math.inf, 0.0
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        dt = time.perf_counter() - t0
        best, spent = min(best, dt), spent + dt
        if spent > budget_s:
            break
    return best


def time_gemm(n: int) -> tuple[float, float]:
    """Best times (s) of one n×n float32 and one n×n bfloat16 matmul on one CPU thread.

    Inputs come from a private generator: the caller's random stream is not
    touched (training seeds it and must not depend on whether this ran)."""
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=gen)
    b = torch.randn(n, n, generator=gen)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        times = []
        with torch.inference_mode():
            for dtype in (torch.float32, torch.bfloat16):
                x, y = a.to(dtype), b.to(dtype)
                times.append(_best_time(lambda x=x, y=y: torch.mm(x, y)))
    finally:
        torch.set_num_threads(threads)
    return times[0], times[1]


def gather_evidence(device: str | torch.device = "cpu") -> Evidence:
    """Look at the device (flags, capability) and time a bf16 and a float32 GEMM."""
    t0 = time.perf_counter()
    dev = normalise_device(device)
    kind = dev.split(":")[0]
    if kind == "cuda":
        index = torch.device(dev).index or 0
        cap = tuple(torch.cuda.get_device_capability(index))
        ev = Evidence(device=dev, cuda_capability=(int(cap[0]), int(cap[1])))
    elif kind == "cpu":
        model, flags, source = _cpuinfo()
        torch_flags = _torch_cpu_flags()
        if torch_flags - flags:
            source = f"{source} + torch.cpu" if source else "torch.cpu"
        flags |= torch_flags
        native = tuple(f for f in NATIVE_CPU_FLAGS if f in flags)
        n = SCREEN_N
        fp32_s, bf16_s = time_gemm(n)
        if native and bf16_s <= SCREEN_MAX_SLOWDOWN * fp32_s:
            # plausibly native: measure again at a size where bf16 kernels show their speed
            n = REFINE_N
            fp32_s, bf16_s = time_gemm(n)
        ev = Evidence(
            device=dev,
            native_flags=native,
            flags_source=source,
            cpu_model=model,
            cpu_capability=str(torch.backends.cpu.get_cpu_capability()),
            gemm_n=n,
            fp32_s=fp32_s,
            bf16_s=bf16_s,
        )
    else:
        ev = Evidence(device=dev)
    ms = (time.perf_counter() - t0) * 1e3
    return dataclasses.replace(ev, probe_ms=ms)


# ------------------------------------------------------------------ decision


def decide(ev: Evidence) -> Decision:
    """The rule, from evidence alone: bf16 where the device has it natively (and,
    on a CPU, a measured GEMM confirms it is at least as fast); float32 otherwise."""
    if ev.device_type == "cuda":
        cap = ev.cuda_capability
        found = "unknown" if cap is None else f"{cap[0]}.{cap[1]}"
        if cap is not None and cap >= CUDA_MIN_CAPABILITY:
            note = f"{ev.device} has native bf16 (compute capability {found} >= 8.0)"
            return Decision(torch.bfloat16, note, ev, note)
        note = f"{ev.device} has no native bf16 (compute capability {found} < 8.0: emulated)"
        return Decision(torch.float32, note, ev, note)
    if ev.device_type != "cpu":
        note = f"no bf16 probe for device {ev.device}"
        return Decision(torch.float32, note, ev, note)

    where = f"cpu ({ev.cpu_model})" if ev.cpu_model else "cpu"
    speed = ev.describe_speed()
    if not ev.native_flags:
        looked = ev.flags_source or "nowhere (no /proc/cpuinfo, no torch probe)"
        cap = f"; torch CPU capability {ev.cpu_capability}" if ev.cpu_capability else ""
        note = (
            f"{where} has no native bf16 (no {'/'.join(NATIVE_CPU_FLAGS[:2])} flag in "
            f"{looked}{cap})"
        )
        return Decision(torch.float32, f"{note}; {speed}", ev, note)
    note = f"{where} reports {', '.join(ev.native_flags)}"
    s = ev.speedup
    if s is None:
        return Decision(torch.float32, f"{note} but a bf16 GEMM was not measured", ev, note)
    if s < MIN_SPEEDUP:
        return Decision(
            torch.float32, f"{note} but {speed}: this torch does not use it here", ev, note
        )
    return Decision(torch.bfloat16, f"{note} and {speed}", ev, note)


@functools.cache
def _cached(device: str) -> Decision:
    return decide(gather_evidence(device))


def bf16_decision(device: str | torch.device = "cpu") -> Decision:
    """What "auto" means on `device`, measured once per device and process."""
    return _cached(normalise_device(device))


def clear_cache() -> None:
    """Forget the decisions (tests; or after changing the thread count)."""
    _cached.cache_clear()


def resolve_dtype(requested: str | torch.dtype, device: str | torch.device = "cpu",
                  what: str = "dtype") -> Resolved:  # fmt: skip
    """The torch dtype for what was asked, and why.

    "float32" is taken as is (no probe). "auto" is `bf16_decision(device)`,
    logged at INFO. "bfloat16" is honoured, but where "auto" would not choose it
    a WARNING says so, with the measured ratio. A bad value is a ValueError
    naming `what`."""
    name = parse_dtype(requested, what)
    if name == "float32":
        return Resolved(torch.float32, "float32 requested")
    decision = bf16_decision(device)
    dev = decision.evidence.device
    if name == AUTO:
        log.info("dtype auto on %s: %s, because %s", dev, decision.name, decision.reason)
        return Resolved(decision.dtype, f"auto: {decision.reason}")
    if decision.dtype != torch.bfloat16:
        ev = decision.evidence
        where = ev.describe_speed() if ev.speedup is not None else "bf16 is not native"
        log.warning(
            "bfloat16 requested on %s, where %s; %s: dtype 'auto' would choose float32 "
            "here, and every step will be slower than in float32",
            dev,
            where,
            decision.native_note,
        )
        return Resolved(torch.bfloat16, f"bfloat16 requested (not fast here: {decision.reason})")
    return Resolved(torch.bfloat16, f"bfloat16 requested; {decision.reason}")
