"""The RLtools checkpoint (policy.tar, what stock PX4's mc_raptor loads): our export, its import, refusals of bad files,
and a check with the real RLtools library (shared/firmware: rl-tools 9acdf5c8 and the px4-blob's policy.h and
policy.tar), built and run as mc_raptor loads a file."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from raptor import policy as rp
from raptor.errors import PolicyFileError
from raptor.policy_export.export import export
from raptor.policy_export.sequences import self_test_sequence

SHARED = Path(os.environ.get("RAPTOR_SHARED_FIRMWARE", Path(__file__).resolve().parents[2] / "shared" / "firmware"))
RLTOOLS = SHARED / "rl-tools-9acdf5c8.tar.xz"
BLOB = SHARED / "px4-raptor-blob-bc6683a.tar.xz"
WHERE = (
    f"needs {RLTOOLS.name} and {BLOB.name} (rl-tools/rl-tools at 9acdf5c8 and rl-tools/px4-blob at bc6683a, "
    "as tar.xz) in ../shared/firmware or RAPTOR_SHARED_FIRMWARE"
)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    out = tmp_path_factory.mktemp("rltools")
    export("default", "rltools", out)
    return out / "policy.tar"


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    """The RLtools headers and the px4-blob unpacked, and our check program built against them."""
    if not (RLTOOLS.is_file() and BLOB.is_file()):
        pytest.skip(WHERE)
    if shutil.which("g++") is None:
        pytest.skip("needs g++ (Debian: build-essential)")
    root = tmp_path_factory.mktemp("rltools-lib")
    for archive in (RLTOOLS, BLOB):
        subprocess.run(["tar", "-xJf", str(archive), "-C", str(root)], check=True)
    from importlib import resources

    src = Path(str(resources.files("raptor.firmware").joinpath("rltools", "raptor_rltools_check.cpp")))
    exe = root / "check"
    subprocess.run(
        [
            "g++",
            "-std=c++17",
            "-O1",
            "-I",
            str(root / "rl-tools" / "include"),
            "-I",
            str(root),
            str(src),
            "-o",
            str(exe),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return exe, root / "px4-blob" / "policy.tar"


def _check(exe: Path, tar: Path, *extra: str) -> tuple[int, str]:
    r = subprocess.run([str(exe), str(tar), *map(str, extra)], capture_output=True, text=True, timeout=120)
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith(("checkpoint_name=", "error:"))]
    return r.returncode, "\n".join(lines)


def test_export_round_trips_bit_exact_with_its_metadata(exported):
    ours, back = rp.load("default"), rp.load(str(exported))
    for k, v in ours.net.state_dict().items():
        assert torch.equal(v, back.net.state_dict()[k]), k
    assert back.metadata["deployment"] == ours.metadata["deployment"]  # the heading governor travels with it
    assert back.metadata["export"]["target"] == "rltools"
    assert back.metadata["export"]["checkpoint_name"].startswith("raptor/default@")
    obs = torch.randn(20, 3, 22, generator=torch.Generator().manual_seed(0)) * 0.3
    with torch.no_grad():
        assert torch.equal(ours.net(obs)[0], back.net(obs)[0])
    readme = (exported.parent / "README.md").read_text()
    for needed in (
        "/fs/microsd/raptor/policy.tar",
        "MC_RAPTOR_ENABLE",
        "MC_RAPTOR_OFFB",
        "IMU_GYRO_RATEMAX",
        "commander mode ext",
        "governed heading frame",
    ):
        assert needed in readme, needed


def _rewrite(src: Path, dst: Path, changes: dict) -> Path:
    """A copy of the tar with the entries named in `changes` passed through changes[name](data) (None drops them;
    a name ending in "/" matches every entry below it)."""
    with tarfile.open(src) as tf, tarfile.open(dst, "w", format=tarfile.USTAR_FORMAT) as out:
        for m in tf.getmembers():
            data = tf.extractfile(m).read()
            key = next((k for k in changes if m.name == k or (k.endswith("/") and m.name.startswith(k))), None)
            if key is not None:
                if changes[key] is None:
                    continue
                data = changes[key](data)
            info = tarfile.TarInfo(m.name)
            info.size = len(data)
            out.addfile(info, io.BytesIO(data))
    return dst


def _off_by(x: float):
    return lambda d: (np.frombuffer(d, "<f4") + x).astype("<f4").tobytes()


def test_bad_tars_are_refused_in_one_line(exported, tmp_path):
    data = exported.read_bytes()
    cut = tmp_path / "cut.tar"
    cut.write_bytes(data[: len(data) // 3])
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"not a tar at all" * 100)
    bias = "actor/layers/2/biases/parameters/"
    variants = {
        "shaped": {"actor/layers/0/weights/parameters/meta":
                   lambda d: d.replace(b"dim_0: 16\ndim_1: 22", b"dim_0: 22\ndim_1: 16")},
        "f64": {bias + "meta": lambda d: d.replace(b"float32", b"float64"),
                bias + "data": lambda d: np.frombuffer(d, "<f4").astype("<f8").tobytes()},
        "bare": {"example/": None},
        "off": {"example/output/data": _off_by(0.01)},
        "nameless": {"actor/meta": lambda d: b"type: sequential\n"},
    }
    paths = {name: _rewrite(exported, tmp_path / f"{name}.tar", ch) for name, ch in variants.items()}
    for path, why in ((cut, "cut|not a readable tar"), (junk, "not a readable tar"),
                      (paths["shaped"], r"shape \(22, 16\)"), (paths["f64"], "float64"),
                      (paths["bare"], "no example"), (paths["off"], "does not replay"),
                      (paths["nameless"], "checkpoint_name")):
        with pytest.raises(PolicyFileError, match=why) as e:
            rp.load(str(path))
        assert "\n" not in str(e.value), str(e.value)


def test_export_refuses_what_is_not_the_student(tmp_path):
    with pytest.raises(PolicyFileError, match="does not exist"):
        export(str(tmp_path / "missing.safetensors"), "rltools", tmp_path / "out")
    assert not (tmp_path / "out" / "policy.tar").exists()


def test_the_real_library_loads_ours_and_the_published_file_as_mc_raptor_does(exported, library, tmp_path):
    """mc_raptor's way (tar reader, group actor, checkpoint_name, the example replayed within 1e-5), then the actions
    on sequences flown in our simulator equal our network's within 1e-5; the published policy.tar loads too and flies
    exactly as `official`."""
    exe, published = library
    rc, text = _check(exe, exported)
    assert rc == 0 and "checkpoint_name=raptor/default@" in text, text
    ours = rp.load(str(exported))
    x, _ = self_test_sequence(ours, steps=300, batch=3)  # other flights than the stored example (its seeds: 100+)
    x = np.ascontiguousarray(x[:, ::-1], np.float32)  # flights in another order than the example's
    seq, act = tmp_path / "seq.bin", tmp_path / "act.bin"
    seq.write_bytes(x.tobytes())
    rc, text = _check(exe, exported, seq, 300, 3, act)
    assert rc == 0, text
    theirs = np.frombuffer(act.read_bytes(), np.float32).reshape(300, 3, 4)
    with torch.no_grad():
        want, _ = ours.net(torch.from_numpy(x))
    assert np.abs(theirs - want.numpy()).max() <= 1e-5
    rc, text = _check(exe, published)
    assert rc == 0 and "checkpoint_name=logs/2025-04-19_16-16-17" in text, text
    pub = rp.load(str(published))
    try:
        official = rp.load("official")
    except PolicyFileError as e:
        pytest.skip(f"the published policy package is not installed ({e})")
    for k, v in official.net.state_dict().items():
        assert torch.equal(v, pub.net.state_dict()[k]), k
    assert pub.governor is None and official.governor is None  # both fly as published
    off_tar = _rewrite(exported, tmp_path / "off.tar", {"example/output/data": _off_by(0.01)})
    rc, text = _check(exe, off_tar)
    assert rc == 1 and "refuses this file" in text  # the library check is a real check
