"""The `raptor` console script: smoke runs at tiny sizes, and one-line errors on bad input."""

from __future__ import annotations

import subprocess
import sys

from raptor import __version__
from raptor.sim.airframe import load_airframes
from raptor.sim.sampling import sample_airframes


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "raptor.cli", *args], capture_output=True, text=True, timeout=300)


def test_version():
    r = run("--version")
    assert r.returncode == 0 and __version__ in r.stdout


def test_sample_writes_a_loadable_file_equal_to_the_sampler(tmp_path):
    out = tmp_path / "af.json"
    r = run("sample", "--n", "5", "--seed", "3", "-o", str(out))
    assert r.returncode == 0, r.stderr
    loaded = load_airframes(out)
    assert [a.parameters for a in loaded] == [a.parameters for a in sample_airframes(5, 3)]


def test_sim_summary_and_bad_airframe(tmp_path):
    r = run("sim", "--airframes", "crazyflie,x500", "--envs", "4", "--steps", "20")
    assert r.returncode == 0, r.stderr
    assert "env-steps/s" in r.stdout and "non-finite states: 0" in r.stdout
    r = run("sim", "--airframes", "nope")
    assert r.returncode == 2
    assert "unknown airframe 'nope'" in r.stderr and "Traceback" not in r.stderr
    bad = tmp_path / "bad.json"
    bad.write_text("[]")
    r = run("sim", "--airframes", str(bad))
    assert r.returncode == 2 and "non-empty" in r.stderr and "Traceback" not in r.stderr
