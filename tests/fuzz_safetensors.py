"""A mutation fuzzer of the two safetensors readers (`make fuzz`).

Starts from valid files (tests/safetensors_corpus.py: a restart-like and a remap-like
file, and the malformed corpus), applies random byte flips, interesting bytes,
insertions, deletions, truncations, header-length lies and structured header edits
(a fixed seed), and feeds each file to the Python reader in-process and to the C++
reader through a persistent driver process (cpp/tests/fuzz_safetensors.cpp; built
with AddressSanitizer by `make fuzz`), one path a line with a per-file timeout.

Failures: a Python exception other than ValueError/OSError (MemoryError included) or a
hang; a C++ driver that crashes, hangs, reports an exception other than landbc::Error,
or exits non-zero at the end (AddressSanitizer errors, LeakSanitizer leaks). Each
failing input is kept under --crashes. Verdicts on which the two readers disagree
(OK/ERR) are counted and shown, not failures.

    .venv/bin/python tests/fuzz_safetensors.py --driver build/fuzz-asan/fuzz_safetensors
"""

from __future__ import annotations

import argparse
import json
import os
import random
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from safetensors_corpus import malformed, valid_files  # noqa: E402

from landbc.emulator import safetensors  # noqa: E402

INTERESTING_INTS = [0, 1, 2, 3, 4, 7, 8, 9, -1, -8, 255, 256, 2**31 - 1, 2**31, 2**32, 2**53,
                    2**60, 2**63 - 1, 2**63, 2**64 - 1, 2**64]  # fmt: skip
INTERESTING_BYTES = [0x00, 0x01, 0x7F, 0x80, 0xFF, ord("{"), ord("}"), ord("["), ord('"'), ord(",")]


class Hang(Exception):
    pass


def _alarm(signum, frame):
    raise Hang()


def mutate_header(raw: bytes, rng: random.Random) -> bytes:
    """A structured edit of the JSON header: a value replaced, a key dropped or added."""
    if len(raw) < 8:
        return raw
    (n,) = struct.unpack("<Q", raw[:8])
    try:
        header = json.loads(raw[8 : 8 + n])
    except Exception:
        return raw
    if not isinstance(header, dict) or not header:
        return raw
    name = rng.choice(list(header))
    entry = header[name]
    choices = [
        lambda: rng.choice(INTERESTING_INTS),
        lambda: [rng.choice(INTERESTING_INTS) for _ in range(rng.randint(0, 3))],
        lambda: rng.choice(["F32", "F64", "BF16", "BOOL", "U8", "I64", "F128", "", 3, None]),
        lambda: rng.choice([{}, [], "x", 1.5, True, {"a": 1}]),
    ]
    if isinstance(entry, dict) and entry and rng.random() < 0.8:
        key = rng.choice(list(entry))
        r = rng.random()
        if r < 0.15:
            del entry[key]
        elif r < 0.5 and isinstance(entry[key], list) and entry[key]:
            i = rng.randrange(len(entry[key]))
            old = entry[key][i]
            near = [old + rng.randint(-9, 9)] if type(old) is int else []
            entry[key][i] = rng.choice([*INTERESTING_INTS, *near])
        else:
            entry[key] = rng.choice(choices)()
    elif rng.random() < 0.5:
        header[name] = rng.choice(choices)()
    else:
        other = header[rng.choice(list(header))]  # a copy of an entry under a new name
        new = rng.choice(["", name + "2", "__metadata__", "x"])
        header[new] = json.loads(json.dumps(other))
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + raw[8 + n :]


def mutate(raw: bytes, rng: random.Random) -> bytes:
    data = bytearray(raw)
    for _ in range(rng.choice([1, 1, 1, 2, 3, 5])):
        r = rng.random()
        if r < 0.25 and data:  # bit flip
            i = rng.randrange(len(data))
            data[i] ^= 1 << rng.randrange(8)
        elif r < 0.4 and data:  # an interesting byte
            data[rng.randrange(len(data))] = rng.choice(INTERESTING_BYTES)
        elif r < 0.5:  # insertion
            i = rng.randint(0, len(data))
            data[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
        elif r < 0.6 and data:  # deletion
            i = rng.randrange(len(data))
            del data[i : i + rng.randint(1, 16)]
        elif r < 0.67:  # truncation
            del data[rng.randint(0, len(data)) :]
        elif r < 0.75 and len(data) >= 8:  # the header length lies
            (n,) = struct.unpack("<Q", data[:8])
            n = rng.choice([n + rng.randint(-16, 16), rng.choice(INTERESTING_INTS)]) % 2**64
            data[:8] = struct.pack("<Q", n)
        else:
            data = bytearray(mutate_header(bytes(data), rng))
    return bytes(data)


class Driver:
    def __init__(self, exe: str, stderr_path: Path):
        env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:abort_on_error=0")
        self.stderr = open(stderr_path, "ab")
        self.proc = subprocess.Popen([exe], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.stderr, env=env, bufsize=0)  # fmt: skip
        assert self.readline(120) == "READY", "the C++ driver did not start"

    def readline(self, timeout: float) -> str | None:
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            return None
        return self.proc.stdout.readline().decode("utf-8", "replace").rstrip("\n")

    def check(self, path: Path, timeout: float) -> str:
        self.proc.stdin.write(str(path).encode() + b"\n")
        line = self.readline(timeout)
        if line is None:
            return "HANG"
        return line or f"CRASH (exit status {self.proc.poll()})"

    def close(self) -> int:
        try:
            self.proc.stdin.close()
        except BrokenPipeError:
            pass
        try:
            return self.proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--driver", help="the C++ driver; without it, the Python reader only")
    ap.add_argument("--timeout", type=float, default=10.0, help="seconds per file")
    ap.add_argument("--crashes", default="build/fuzz-crashes", help="where failing inputs go")
    args = ap.parse_args(argv)
    rng = random.Random(args.seed)
    seeds = list(valid_files().values())
    pool = seeds + [raw for _, raw, _ in malformed() if len(raw) < 1 << 16]
    crashes = Path(args.crashes)
    work = Path(tempfile.mkdtemp(prefix="fuzz-safetensors-"))
    path = work / "input.safetensors"
    stderr_path = work / "driver.stderr"
    driver = Driver(args.driver, stderr_path) if args.driver else None
    signal.signal(signal.SIGALRM, _alarm)
    failures: list[str] = []
    counts = {"py_ok": 0, "py_err": 0, "cpp_ok": 0, "cpp_err": 0, "disagree": 0}
    disagreements: list[str] = []

    def keep(raw: bytes, why: str) -> None:
        crashes.mkdir(parents=True, exist_ok=True)
        out = crashes / f"input-{len(failures):04d}.safetensors"
        out.write_bytes(raw)
        failures.append(f"{why} -> {out}")
        print(f"FAILURE: {why} (input kept as {out})", flush=True)

    start = time.monotonic()
    execs = 0
    while time.monotonic() - start < args.seconds:
        base = rng.choice(seeds) if rng.random() < 0.7 else rng.choice(pool)
        raw = mutate(base, rng)
        path.write_bytes(raw)
        execs += 1
        py = "?"
        signal.setitimer(signal.ITIMER_REAL, args.timeout)
        try:
            safetensors.load(path)
            py = "OK"
        except (ValueError, OSError):
            py = "ERR"
        except Hang:
            keep(raw, "Python reader hangs")
        except BaseException as e:  # MemoryError, KeyError, TypeError, ...: a defect
            if isinstance(e, KeyboardInterrupt):
                raise
            keep(raw, f"Python reader raised {type(e).__name__}: {str(e)[:200]}")
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        counts["py_ok" if py == "OK" else "py_err"] += py in ("OK", "ERR")
        if driver:
            line = driver.check(path, args.timeout)
            cpp = line.split(" ", 1)[0]
            if cpp in ("OK", "ERR"):
                counts["cpp_ok" if cpp == "OK" else "cpp_err"] += 1
                if py in ("OK", "ERR") and cpp != py:
                    counts["disagree"] += 1
                    if len(disagreements) < 5:
                        disagreements.append(f"Python {py}, C++ {line[:200]}")
                        keep_dir = crashes / "disagreements"
                        keep_dir.mkdir(parents=True, exist_ok=True)
                        (keep_dir / f"{len(disagreements)}.safetensors").write_bytes(raw)
            else:
                keep(raw, f"C++ reader: {line[:300]}")
                if cpp in ("HANG", "CRASH"):
                    driver.close()
                    driver = Driver(args.driver, stderr_path)
    seconds = time.monotonic() - start
    if driver:
        status = driver.close()
        if status != 0:
            failures.append(f"the C++ driver exited with status {status} (sanitizer report?)")
    report = stderr_path.read_text(errors="replace") if stderr_path.exists() else ""
    if "ERROR: AddressSanitizer" in report or "ERROR: LeakSanitizer" in report:
        failures.append("sanitizer report:\n" + report[-6000:])
    shutil.rmtree(work, ignore_errors=True)
    print(f"fuzz_safetensors: {execs} inputs in {seconds:.1f} s ({execs / seconds:.0f}/s), seed "
          f"{args.seed}, C++ driver {args.driver or 'not run'}")  # fmt: skip
    print("  " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    for d in disagreements:
        print(f"  disagreement: {d}")
    print(f"  failures: {len(failures)}")
    for f in failures:
        print(f"  {f}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
