"""The `raptor` console script: smoke runs at tiny sizes, and one-line errors on bad input."""

from __future__ import annotations

import subprocess
import sys

from raptor import __version__
from raptor.sim.airframe_files import load_airframes
from raptor.sim.sampling import sample_airframes


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "raptor", *args], capture_output=True, text=True, timeout=300)


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


def test_help_is_light_and_a_bare_command_prints_it():
    """`raptor --help` and a bare `raptor` answer from the command table alone (no torch import: under a second),
    exit 0, and list every command."""
    probe = ("import sys, raptor.commands.cli as c\n"
             "try:\n    c.main(['--help'])\nexcept SystemExit as e:\n    assert e.code == 0\n"
             "print('TORCH' if 'torch' in sys.modules else 'LIGHT')")
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip().endswith("LIGHT"), r.stdout + r.stderr
    r = run()
    assert r.returncode == 0
    for name in ("sample", "sim", "eval", "train", "distill", "export", "hil"):
        assert f"    {name} " in r.stdout


def test_eval_defaults_to_the_shipped_policy_writes_readable_files_and_explains_the_envelope(tmp_path):
    import json
    import os
    import stat

    out = tmp_path / "ev"
    r = subprocess.run([sys.executable, "-m", "raptor", "eval", "--airframes", "crazyflie,flightmare",
                        "--episodes", "3", "--out", str(out)], capture_output=True, text=True, timeout=300,
                       preexec_fn=lambda: os.umask(0o022))
    assert r.returncode == 0, r.stderr
    m = json.loads((out / "metrics.json").read_text())
    assert m["config"]["policy"] == "default"
    from raptor.policy import load
    from raptor.policy.io import training_envelope

    lo, hi = training_envelope(load("default").metadata)  # the shipped default's own (its teachers' range)
    if not lo * 0.95 <= 12.12 <= hi * 1.05:
        assert "thrust-to-weight 12.1" in m["per_airframe"]["flightmare"]["envelope_note"]
        assert "flightmare (*)" in r.stdout and "outside the training envelope" in r.stdout
    assert "envelope_note" not in m["per_airframe"]["crazyflie"]
    for f in ("metrics.json", "metrics.md", "success.png"):
        assert stat.S_IMODE((out / f).stat().st_mode) == 0o644, f
    assert not list(out.glob(".*.tmp"))
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    r = run("eval", "--airframes", "crazyflie", "--episodes", "1", "--out", str(blocker))
    assert r.returncode == 2 and "is a file" in r.stderr and "Traceback" not in r.stderr
