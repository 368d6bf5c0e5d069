"""Bundles verify themselves: checksums, catalog, stepper attributes."""

import json
import shutil

import pytest

from landbc.emulator import bundle
from landbc.emulator.bundle import BundleError


@pytest.fixture
def bundle_copy(tiny_bundle, tmp_path):
    dst = tmp_path / "b"
    shutil.copytree(tiny_bundle, dst)
    return dst


def _edit_manifest(path, fn):
    m = json.loads((path / "manifest.json").read_text())
    fn(m)
    (path / "manifest.json").write_text(json.dumps(m))


def test_tiny_bundle_verifies_and_loads_both_directions(tiny_bundle):
    manifest = bundle.verify(tiny_bundle)
    assert set(manifest["directions"]) == {"forward", "backward"}
    assert manifest["grid"] == {"res": 0.05, "coarse_factor": 5}
    assert set(manifest["normalisation"]) >= {"elevation", "t2m", "lai", "co2"}
    assert manifest["training"]["data"]["provenance"]
    for d, sign in (("forward", 1), ("backward", -1)):
        stepper, _ = bundle.load_stepper(tiny_bundle, d)
        assert stepper.direction == sign
    text = bundle.inspect(tiny_bundle)
    assert "backward, forward" in text and "sha256 ok" in text


def test_corrupt_weights_are_refused(bundle_copy):
    f = bundle_copy / "stepper_forward.pt"
    data = bytearray(f.read_bytes())
    data[len(data) // 2] ^= 0xFF
    f.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="sha256 of stepper_forward.pt"):
        bundle.verify(bundle_copy)


def test_missing_file_is_refused(bundle_copy):
    (bundle_copy / "stepper_backward.pt").unlink()
    with pytest.raises(BundleError, match="stepper_backward.pt listed in the manifest is missing"):
        bundle.verify(bundle_copy)


def test_missing_manifest_and_bad_version_are_refused(bundle_copy, tmp_path):
    with pytest.raises(BundleError, match="is not a folder"):
        bundle.verify(tmp_path / "nope")
    _edit_manifest(bundle_copy, lambda m: m.update(format_version=99))
    with pytest.raises(BundleError, match="format_version expected 1, found 99"):
        bundle.verify(bundle_copy)
    (bundle_copy / "manifest.json").unlink()
    with pytest.raises(BundleError, match="has no manifest.json"):
        bundle.verify(bundle_copy)


def test_catalog_mismatch_is_refused(bundle_copy):
    def change_units(m):
        m["variables"]["state"][2]["units"] = "furlongs"

    _edit_manifest(bundle_copy, change_units)
    with pytest.raises(BundleError, match="manifest 'variables' does not match"):
        bundle.verify(bundle_copy)


def test_manifest_that_disagrees_with_the_stepper_is_refused(bundle_copy):
    _edit_manifest(bundle_copy, lambda m: m["normalisation"]["t2m"].__setitem__(0, 0.0))
    with pytest.raises(BundleError, match="normalisation"):
        bundle.load_stepper(bundle_copy, "forward")
    _edit_manifest(bundle_copy, lambda m: m["tiling"].__setitem__("tile", 64))
    with pytest.raises(BundleError, match="tile"):
        bundle.load_stepper(bundle_copy, "backward")


def test_unknown_direction_is_refused(tiny_bundle):
    with pytest.raises(BundleError, match="direction must be one of"):
        bundle.load_stepper(tiny_bundle, "sideways")


def _point_forward_at(path, name):
    """A manifest whose forward stepper (and its checksum) is the file `name`."""

    def edit(m):
        digest = m["files"].pop("stepper_forward.pt")
        m["files"][name] = digest
        m["directions"]["forward"]["file"] = name

    _edit_manifest(path, edit)


@pytest.mark.parametrize("name", ["../b2/stepper_forward.pt", "/etc/passwd", "sub/x.pt", ".."])
def test_manifest_file_names_stay_in_the_bundle_folder(bundle_copy, name):
    shutil.copytree(bundle_copy, bundle_copy.parent / "b2")  # a real file behind "../b2/..."
    _point_forward_at(bundle_copy, name)
    with pytest.raises(BundleError, match="not a plain file name in the bundle folder"):
        bundle.verify(bundle_copy)


def test_stepper_is_loaded_from_the_bytes_that_were_hashed(bundle_copy, monkeypatch):
    """A stepper replaced after `verify` checked it is refused, not loaded unchecked."""
    real_verify = bundle.verify

    def verify_then_replace(folder):
        manifest = real_verify(folder)
        f = bundle_copy / "stepper_forward.pt"
        data = bytearray(f.read_bytes())
        data[len(data) // 2] ^= 0xFF
        f.write_bytes(bytes(data))
        return manifest

    monkeypatch.setattr(bundle, "verify", verify_then_replace)
    with pytest.raises(BundleError, match="changed since its checksum was verified"):
        bundle.load_stepper(bundle_copy, "forward")
