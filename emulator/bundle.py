"""Bundles: a folder with manifest.json and one TorchScript stepper per direction.

The manifest describes the bundle completely (DESIGN.md, principle 2): format
version, variables, classes, grid resolution and coarse factor, tiling,
normalisation, directions, training data provenance and licence, measured skill,
and the sha256 of every file. `load_stepper` checks all of it against this
landbc and against the stepper itself, and refuses any mismatch by name.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import io
import json
import os
import tempfile
from pathlib import Path

import torch

from . import catalog

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
DIRECTIONS = {"forward": 1, "backward": -1}


class BundleError(ValueError):
    """A bundle that is missing, corrupt or does not match this landbc."""


def bundle_file(folder: str | Path, name: object) -> Path:
    """The path of a file the manifest names, which must be a plain file name in the
    bundle folder: no folders, no "..", no absolute path, so a manifest cannot make
    landbc hash or load a file elsewhere. (A link placed in the folder, e.g. to weights
    on shared storage, is its owner's choice and is followed.)"""
    folder = Path(folder)
    if (not isinstance(name, str) or name in ("", ".", "..") or "/" in name or "\\" in name
            or "\0" in name):  # fmt: skip
        raise BundleError(f"bundle {folder}: manifest file name {name!r} is not a plain file "
                          f"name in the bundle folder")  # fmt: skip
    return folder / name


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def stepper_file(direction: str) -> str:
    return f"stepper_{direction}.pt"


def catalog_description() -> dict:
    """The part of the manifest that must equal this landbc's catalog."""
    return {
        "variables": {
            "static": [v.to_dict() for v in catalog.STATIC_VARIABLES],
            "forcing": [v.to_dict() for v in catalog.FORCING_VARIABLES],
            "state": [v.to_dict() for v in catalog.STATE_VARIABLES],
            "derived": [v.to_dict() for v in catalog.DERIVED_VARIABLES],
        },
        "classes": {
            name: [
                {"index": c.index, "name": c.name, "source_codes": list(c.source_codes)}
                for c in classes
            ]
            for name, classes in (
                ("lu", catalog.LU_CLASSES),
                ("lc", catalog.LC_CLASSES),
                ("koppen", catalog.KOPPEN_GROUPS),
                ("igbp", catalog.IGBP_CLASSES),
            )
        },
        "lc_high_vegetation": list(catalog.LC_HIGH_VEGETATION),
        "lc_low_vegetation": list(catalog.LC_LOW_VEGETATION),
        "lc_vegetation_cover": list(catalog.LC_VEGETATION_COVER),
        "luh2_states": list(catalog.LUH2_STATES),
    }


def write_bundle(
    folder: str | Path,
    steppers: dict[str, torch.jit.ScriptModule],
    *,
    name: str,
    res: float,
    coarse_factor: int,
    tile: int,
    stride: int,
    normalisation: dict[str, list[float]],
    training: dict,
    metrics: dict | None = None,
) -> Path:
    """Save scripted steppers and the manifest into `folder` (created; must not exist
    unless empty). Written to a temporary sibling and renamed, so a failed export
    leaves no half bundle."""
    folder = Path(folder)
    if folder.exists() and any(folder.iterdir()):
        raise FileExistsError(f"bundle folder {folder} exists and is not empty")
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    files = {}
    for direction, module in steppers.items():
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {sorted(DIRECTIONS)}, found {direction!r}")
        fn = stepper_file(direction)
        torch.jit.save(module, str(tmp / fn))
        files[fn] = sha256(tmp / fn)
    manifest = {
        "format_version": FORMAT_VERSION,
        "name": name,
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "torch_version": torch.__version__.split("+")[0],
        **catalog_description(),
        "grid": {"res": res, "coarse_factor": coarse_factor},
        "tiling": {
            "tile": tile,
            "stride": stride,
            "margin": (tile - stride) // 2,
            "scheme": "overlap-tile: cores of `stride` px on the global lattice of its "
            "multiples, each computed from a window with `margin` px of context per side "
            "(widened to global multiples of 16, the nets' pooling grid; edge pixels "
            "repeated beyond the domain), the core kept, no blending",
        },
        "normalisation": normalisation,
        "directions": {
            d: {
                "file": stepper_file(d),
                "prior": "year t-1 / month t-1" if d == "forward" else "year t+1 / month t+1",
            }
            for d in steppers
        },
        "forcing_cadence": "every step needs all forcing variables; yearly ones are read "
        "when the step enters a new year",
        "training": training,
        "metrics": metrics or {},
        "files": files,
    }
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    if folder.exists():
        folder.rmdir()
    os.replace(tmp, folder)
    return folder


def update_metrics(folder: str | Path, metrics: dict) -> None:
    """Merge measured skill into the manifest's metrics (the manifest itself carries
    no checksum; the files it lists do)."""
    path = Path(folder) / MANIFEST
    manifest = json.loads(path.read_text())
    manifest.setdefault("metrics", {}).update(metrics)
    # strict JSON (no NaN): the C++ front's parser rejects NaN, and a bundle must open there
    text = json.dumps(manifest, indent=1, allow_nan=False)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(text + "\n")
    os.replace(tmp, path)


def training_years(manifest: dict) -> tuple[int, int] | None:
    """The years the bundle was trained on, None if its manifest does not say. The
    LAI climatology a host gives should be of these years, as in training."""
    years = manifest.get("training", {}).get("data", {}).get("years")
    return None if years is None else (int(years[0]), int(years[1]))


def read_manifest(folder: str | Path) -> dict:
    folder = Path(folder)
    path = folder / MANIFEST
    if not folder.is_dir():
        raise BundleError(f"bundle {folder} is not a folder")
    if not path.is_file():
        raise BundleError(f"bundle {folder} has no {MANIFEST}")
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise BundleError(f"{path} is not valid JSON: {e}") from None
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise BundleError(f"{path}: format_version expected {FORMAT_VERSION}, found {version}")
    return manifest


def _refuse_other_inputs(folder: Path, expected: dict, found: dict) -> None:
    """A bundle whose nets take other variables: say which, and for the one added in
    0.3 (the LAI climatology) how to bring the bundle up to date."""
    for part in ("static", "forcing"):
        want = [v["name"] for v in expected.get(part, [])]
        have = [v.get("name") for v in found.get(part, []) if isinstance(v, dict)]
        missing = [n for n in want if n not in have]
        if missing:
            hint = ""
            if missing == [catalog.LAI_CLIMATOLOGY]:
                hint = (
                    " (bundles before landbc 0.3 predate it: train its LAI nets again, "
                    "keeping LU and LC, with `landbc train CUBE --lu-lc-from BUNDLE`)"
                )
            raise BundleError(
                f"bundle {folder}: its nets do not take the {part} variable(s) {missing} "
                f"that this landbc gives{hint}"
            )


def verify(folder: str | Path, check_catalog: bool = True) -> dict:
    """Check manifest and files; return the manifest. Raises BundleError naming the
    problem. `check_catalog=False` skips the comparison with this landbc's catalog:
    for reading single nets out of an older bundle (`training.kept_lu_lc`), never
    for running it."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    expected = catalog_description() if check_catalog else {}
    for key, value in expected.items():
        found = manifest.get(key)
        if key == "variables" and isinstance(found, dict) and found != value:
            _refuse_other_inputs(folder, value, found)
        if found != value:
            raise BundleError(
                f"bundle {folder}: manifest '{key}' does not match this landbc's catalog "
                f"(expected {json.dumps(value)[:200]}..., found {json.dumps(found)[:200]}...)"
            )
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        raise BundleError(f"bundle {folder}: manifest lists no files with checksums")
    for fn, digest in files.items():
        p = bundle_file(folder, fn)
        if not p.is_file():
            raise BundleError(f"bundle {folder}: file {fn} listed in the manifest is missing")
        found = sha256(p)
        if found != digest:
            raise BundleError(
                f"bundle {folder}: sha256 of {fn} is {found}, manifest expects {digest} "
                f"(file corrupt or replaced)"
            )
    for d, entry in manifest.get("directions", {}).items():
        if entry.get("file") not in files:
            raise BundleError(
                f"bundle {folder}: direction {d!r} file {entry.get('file')} has no checksum"
            )
    return manifest


# Tiles of one window shape per batch on a GPU (load_stepper); a CPU runs one at a time.
GPU_TILES_PER_BATCH = 8


def load_stepper(
    folder: str | Path,
    direction: str,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
) -> tuple[torch.jit.ScriptModule, dict]:
    """Verify the bundle and load the stepper of one direction onto `device`.

    The nets are cast to `dtype` (float32 or bfloat16) and channels_last memory
    format; normalisation and the state stay float32. On a GPU the stepper runs
    8 tiles of a shape per batch (the GPU needs the parallel work); on a CPU one
    (a tile already fills the cores, and each tile in a batch adds its
    activations, ~0.5 GB per 512² tile, to the workspace).
    """
    manifest = verify(folder)
    if direction not in DIRECTIONS:
        raise BundleError(f"direction must be one of {sorted(DIRECTIONS)}, found {direction!r}")
    if direction not in manifest["directions"]:
        raise BundleError(
            f"bundle {folder} has no {direction} stepper (has {sorted(manifest['directions'])})"
        )
    fn = manifest["directions"][direction]["file"]
    path = bundle_file(folder, fn)
    # Hashed and loaded from the same bytes: a file replaced after `verify` is refused,
    # never loaded unchecked.
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != manifest["files"][fn]:
        raise BundleError(f"bundle {folder}: {fn} changed since its checksum was verified")
    stepper = torch.jit.load(io.BytesIO(data), map_location=device)
    checks = {
        "direction": (int(stepper.direction), DIRECTIONS[direction]),
        "tile": (int(stepper.tile), manifest["tiling"]["tile"]),
        "stride": (int(stepper.stride), manifest["tiling"]["stride"]),
        "coarse_factor": (int(stepper.coarse_factor), manifest["grid"]["coarse_factor"]),
        "res": (float(stepper.res), manifest["grid"]["res"]),
        "normalisation": ({k: list(v) for k, v in stepper.norm.items()}, manifest["normalisation"]),
    }
    for what, (in_file, in_manifest) in checks.items():
        if in_file != in_manifest:
            raise BundleError(
                f"bundle {folder}: {path.name} has {what} {in_file}, manifest says {in_manifest}"
            )
    if dtype not in (torch.float32, torch.bfloat16):
        raise BundleError(f"dtype must be float32 or bfloat16, found {dtype}")
    for net in (stepper.lu_net, stepper.lc_net, stepper.lai_net):
        # channels_last weights make oneDNN run the convolutions in NHWC: 1.5x faster
        # per tile batch here, fp32 and bf16 alike (measured on 4 x 256^2 tiles)
        net.to(dtype=dtype, memory_format=torch.channels_last)
    stepper.tiles_per_batch = GPU_TILES_PER_BATCH if torch.device(device).type == "cuda" else 1
    return stepper, manifest


def inspect(folder: str | Path) -> str:
    """A human-readable summary of a bundle (for `landbc inspect`)."""
    manifest = verify(folder)
    lines = [
        f"bundle {manifest['name']} ({folder}), format {manifest['format_version']}, "
        f"torch {manifest['torch_version']}, created {manifest['created']}",
        f"grid: {manifest['grid']['res']} deg, coarse factor {manifest['grid']['coarse_factor']}; "
        f"tiles {manifest['tiling']['tile']} px, stride {manifest['tiling']['stride']}",
        f"directions: {', '.join(sorted(manifest['directions']))}",
        "inputs: "
        + ", ".join(
            v["name"] for part in ("static", "forcing") for v in manifest["variables"][part]
        ),
        "outputs: "
        + ", ".join(
            v["name"] for part in ("state", "derived") for v in manifest["variables"][part]
        ),
        f"training data: {manifest['training'].get('data', {}).get('title', '?')}",
        "files: "
        + ", ".join(
            f"{fn} ({Path(folder, fn).stat().st_size / 1e6:.1f} MB, sha256 ok)"
            for fn in manifest["files"]
        ),
    ]
    for k, v in manifest.get("metrics", {}).items():
        if isinstance(v, dict) and {"lu", "lai", "period"} <= set(v):  # an evaluate report
            lu = v["lu"]["first_year"]
            lai = v["lai"]["all_months"]
            lines.append(
                f"{k} ({v['period'][0]}-{v['period'][1]}): LU first-year accuracy "
                f"{lu['emulator']['overall']['accuracy']:.4f} (persistence "
                f"{lu['persistence']['overall']['accuracy']:.4f}), change accuracy "
                f"{lu['emulator']['change']['accuracy']:.4f}; LAI R2 {lai['emulator']['r2']:.3f} "
                f"(climatology {lai['climatology']['r2']:.3f}, bilinear coarse truth "
                f"{lai['bilinear_coarse_truth']['r2']:.3f})"
            )
        else:
            lines.append(f"metric {k}: {json.dumps(v)}")
    return "\n".join(lines)
