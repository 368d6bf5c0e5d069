"""The one helper that decides the nets' dtype (emulator/precision.py), and where it is
used: the rule on faked evidence (so these tests do not depend on this machine's
CPU), the real probe on this machine, warnings, configs, the CLI, the API, the
step loop's record of what it ran in, and training's autocast."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest
import torch

from landbc.emulator import precision
from landbc.emulator.precision import Evidence, decide, resolve_dtype

REPO = Path(__file__).resolve().parents[1]

AVX2 = Evidence(
    device="cpu",
    flags_source="/proc/cpuinfo",
    cpu_model="AMD EPYC",
    cpu_capability="AVX2",
    gemm_n=128,
    fp32_s=1e-4,
    bf16_s=270e-4,  # 270x slower: emulated
)
AMX = Evidence(
    device="cpu",
    native_flags=("amx_bf16", "avx512_bf16"),
    flags_source="/proc/cpuinfo",
    cpu_model="Intel Xeon Platinum 8480+",
    cpu_capability="AVX512",
    gemm_n=512,
    fp32_s=4e-3,
    bf16_s=1e-3,  # 4x faster
)


@pytest.fixture
def fake_evidence(monkeypatch):
    """Make the probe return the given evidence (and forget cached decisions)."""

    def use(ev: Evidence) -> None:
        precision.clear_cache()
        monkeypatch.setattr(precision, "gather_evidence", lambda device="cpu": ev)

    yield use
    precision.clear_cache()


# --- the rule, on faked evidence ----------------------------------------------------


def test_no_flag_and_slow_gemm_is_float32():
    d = decide(AVX2)
    assert d.dtype == torch.float32
    assert "no native bf16" in d.reason and "270× slower" in d.reason and "128²" in d.reason
    assert "AVX2" in d.reason


def test_flags_and_fast_gemm_is_bfloat16():
    d = decide(AMX)
    assert d.dtype == torch.bfloat16 and d.name == "bfloat16"
    assert "amx_bf16, avx512_bf16" in d.reason and "4.0× faster" in d.reason


def test_a_fast_timing_without_a_flag_is_not_trusted():
    # a loaded machine can make float32 look slow (its second thread not scheduled)
    fast = Evidence(**{**AVX2.__dict__, "bf16_s": 1e-5})
    assert fast.speedup == pytest.approx(10)
    assert decide(fast).dtype == torch.float32


def test_a_flag_without_a_fast_gemm_is_not_trusted():
    slow = Evidence(**{**AMX.__dict__, "bf16_s": 8e-3})
    d = decide(slow)
    assert d.dtype == torch.float32 and "2.0× slower" in d.reason and "does not use it" in d.reason
    unmeasured = Evidence(device="cpu", native_flags=("avx512_bf16",))
    assert decide(unmeasured).dtype == torch.float32


def test_the_threshold_is_at_least_as_fast():
    at = Evidence(**{**AMX.__dict__, "bf16_s": AMX.fp32_s})
    below = Evidence(**{**AMX.__dict__, "bf16_s": AMX.fp32_s * 1.05})
    assert decide(at).dtype == torch.bfloat16 and decide(below).dtype == torch.float32


@pytest.mark.parametrize(
    "cap,want", [((9, 0), torch.bfloat16), ((8, 0), torch.bfloat16), ((7, 5), torch.float32)]
)
def test_cuda_follows_compute_capability(cap, want):
    d = decide(Evidence(device="cuda:1", cuda_capability=cap))
    assert d.dtype == want and f"{cap[0]}.{cap[1]}" in d.reason and "cuda:1" in d.reason


def test_unknown_devices_are_float32():
    assert decide(Evidence(device="cuda:0")).dtype == torch.float32  # capability unknown
    assert decide(Evidence(device="mps")).dtype == torch.float32


def test_parse_dtype_accepts_names_aliases_and_torch_dtypes():
    for given, want in [
        ("auto", "auto"),
        ("float32", "float32"),
        ("fp32", "float32"),
        ("bf16", "bfloat16"),
        (torch.bfloat16, "bfloat16"),
        (torch.float32, "float32"),
    ]:
        assert precision.parse_dtype(given) == want
    for bad in ("float16", torch.float16, "", ["auto"], None):
        with pytest.raises(ValueError, match=r"--dtype: expected 'auto', 'float32' or 'bf"):
            precision.parse_dtype(bad, "--dtype")


# --- the real probe on this machine --------------------------------------------------


def test_real_decision_on_this_machine_is_valid_and_cached():
    precision.clear_cache()
    rng = torch.get_rng_state()
    threads = torch.get_num_threads()
    t0 = time.perf_counter()
    d = precision.bf16_decision("cpu")
    first = time.perf_counter() - t0
    assert d.dtype in (torch.float32, torch.bfloat16) and d.reason
    ev = d.evidence
    assert ev.device == "cpu" and ev.gemm_n in (precision.SCREEN_N, precision.REFINE_N)
    assert ev.speedup is not None and ev.speedup > 0 and ev.probe_ms > 0
    assert decide(ev) == d  # the decision is the rule applied to what was measured
    assert first < 2.0  # tens of milliseconds in practice
    # the caller's random stream and thread count are left as they were
    assert torch.equal(torch.get_rng_state(), rng) and torch.get_num_threads() == threads
    t0 = time.perf_counter()
    assert precision.bf16_decision(torch.device("cpu")) is d  # cached per device
    assert time.perf_counter() - t0 < 0.01
    dtype, reason = resolve_dtype("auto", "cpu")
    assert dtype == d.dtype and reason == f"auto: {d.reason}"


# --- resolving: logs and warnings ----------------------------------------------------


def test_explicit_bfloat16_where_slow_warns_with_the_ratio(fake_evidence, caplog):
    fake_evidence(AVX2)
    with caplog.at_level(logging.INFO, logger="landbc.emulator.precision"):
        dtype, reason = resolve_dtype("bfloat16", "cpu")
    assert dtype == torch.bfloat16  # honoured
    (rec,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    msg = rec.getMessage()
    assert "bfloat16 requested on cpu" in msg and "270× slower than float32" in msg
    assert "measured" in msg and "no native bf16" in msg and "not fast here" in reason


def test_explicit_bfloat16_where_native_is_quiet(fake_evidence, caplog):
    fake_evidence(AMX)
    with caplog.at_level(logging.INFO, logger="landbc.emulator.precision"):
        assert resolve_dtype(torch.bfloat16, "cpu").dtype == torch.bfloat16
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_auto_logs_its_choice_at_info(fake_evidence, caplog):
    fake_evidence(AMX)
    with caplog.at_level(logging.INFO, logger="landbc.emulator.precision"):
        assert resolve_dtype("auto").dtype == torch.bfloat16
    (rec,) = caplog.records
    assert rec.levelno == logging.INFO
    assert "dtype auto on cpu: bfloat16" in rec.getMessage() and "amx_bf16" in rec.getMessage()


def test_float32_needs_no_probe(monkeypatch):
    precision.clear_cache()

    def boom(device="cpu"):
        raise AssertionError("probed")

    monkeypatch.setattr(precision, "gather_evidence", boom)
    assert resolve_dtype("float32", "cpu") == (torch.float32, "float32 requested")


# --- where it is used ----------------------------------------------------------------

CONFIG = """
[bundle]
path = "weights/demo"
{dtype}
[period]
start = "2015-01"
steps = 1
[forcing]
cube = "c.zarr"
[output]
store = "o.zarr"
"""


def test_config_accepts_auto_and_defaults_to_it(tmp_path):
    from landbc.coupler.config import load_config

    p = tmp_path / "run.toml"
    p.write_text(CONFIG.format(dtype='dtype = "auto"'))
    assert load_config(p).dtype == "auto"
    p.write_text(CONFIG.format(dtype=""))
    assert load_config(p).dtype == "auto"
    p.write_text(CONFIG.format(dtype='dtype = "bf32"'))
    with pytest.raises(ValueError) as e:
        load_config(p)
    msg = str(e.value)
    assert "[bundle.dtype]" in msg and '"auto", "float32" or "bfloat16"' in msg and "bf32" in msg


def test_cli_overrides_are_checked(tmp_path, capsys):
    from landbc.coupler.cli import _DTYPES, main

    assert _DTYPES == precision.DTYPE_CHOICES

    p = tmp_path / "run.toml"
    p.write_text(CONFIG.format(dtype=""))
    with pytest.raises(SystemExit) as e:
        main(["run", str(p), "--dtype", "float16"])
    assert e.value.code == 2 and "--dtype" in capsys.readouterr().err
    assert main(["run", str(p), "--device", "gpu"]) == 2
    err = capsys.readouterr().err
    assert "[bundle.device]" in err and "--device gpu" in err


def test_api_accepts_auto(fake_evidence):
    from landbc.emulator.api import BoundaryConditionEmulator

    fake_evidence(AVX2)
    emu = BoundaryConditionEmulator.from_bundle(REPO / "weights" / "demo", dtype="auto")
    assert emu.dtype == torch.float32 and emu.dtype_reason.startswith("auto: ")
    fake_evidence(AMX)
    emu = BoundaryConditionEmulator.from_bundle(REPO / "weights" / "demo", dtype="auto")
    assert emu.dtype == torch.bfloat16
    # the library default stays float32 on every machine
    assert BoundaryConditionEmulator.from_bundle(REPO / "weights" / "demo").dtype == torch.float32


def test_training_autocast_follows_device_and_dtype():
    from landbc.emulator.training import _autocast

    a = torch.ones(4, 4)
    cpu = torch.device("cpu")
    with _autocast(cpu, torch.bfloat16):
        assert torch.mm(a, a).dtype == torch.bfloat16
    with _autocast(cpu, torch.float32):
        assert torch.mm(a, a).dtype == torch.float32


def test_training_config_checks_dtype_and_device():
    from landbc.emulator.training import TrainConfig, main

    with pytest.raises(SystemExit):
        main(["cube.zarr", "--out", "b", "--dtype", "float16"])
    with pytest.raises(ValueError, match="device: expected"):
        TrainConfig(cube=Path("c"), out=Path("o"), device="tpu").torch_device()


def test_run_records_the_nets_dtype_and_warns_on_a_changed_resume(
    tmp_path, tiny_bundle, tiny_cube, caplog
):
    from landbc.coupler.config import RunConfig
    from landbc.coupler.driver import run
    from landbc.coupler.output import OutputStore

    cfg = RunConfig(bundle=tiny_bundle, cube=tiny_cube, store=tmp_path / "bc.zarr",
                    restart_dir=tmp_path / "r", start=(2001, 1), steps=2, restart_every=1,
                    dtype="float32", source="test").with_()  # fmt: skip
    run(cfg, progress=False, max_steps=1)
    st = OutputStore.open(cfg.store)
    assert (st.root.attrs["nets_dtype"], st.root.attrs["nets_device"]) == ("float32", "cpu")
    st.root.attrs["nets_dtype"] = "bfloat16"  # as if started where auto meant bf16
    with caplog.at_level(logging.WARNING, logger="landbc.coupler.driver"):
        s = run(cfg, resume=True, progress=False)
    assert s.finished
    (rec,) = [r for r in caplog.records if "not bit-identical" in r.getMessage()]
    assert "nets_dtype bfloat16 -> float32" in rec.getMessage()
