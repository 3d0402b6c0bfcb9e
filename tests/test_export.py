"""Export: the C core (through pybind11, host gcc and QEMU Cortex-M) pinned to the torch policy, and the exporter."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import pytest
import torch

import raptor.policy as rp
from raptor.conventions import FW_P, FW_PREV_ACTION, FW_Q, FW_V, FW_W
from raptor.policy.io import default_metadata
from raptor.policy.network import PARAMETER_LAYOUT
from raptor.policy_export import _core
from raptor.policy_export.export import export
from raptor.policy_export.sequences import parity_sequence

REPO = Path(__file__).resolve().parents[1]
has_official = find_spec("foundation_policy") is not None
HOSTILE = 'rm -rf run/checkpoints/* "q" \\ */ /* ??/ ??= \n line \r\t \x01 é 😀 \\'
has_arm = shutil.which("arm-none-eabi-gcc") is not None and shutil.which("qemu-system-arm") is not None


def _policy(kind: str) -> rp.Policy:
    if kind == "official":
        if not has_official:
            pytest.skip("optional extra 'official' not installed")
        return rp.load("official")
    torch.manual_seed(0)
    net = rp.RaptorPolicyNet()
    with torch.no_grad():
        net.gru.h0.uniform_(-0.5, 0.5)  # a random student with a non-trivial learned h0
    meta = default_metadata(source=HOSTILE, name=HOSTILE)  # and metadata that must not break the C it reaches
    meta["provenance"]["pipeline"] = [HOSTILE, "*/ int x = 1; /*", "x" * 5000]
    return rp.Policy(net, meta)


def _core_for(policy: rp.Policy, native_every: int, interval_ns: int = 0) -> _core.Core:
    params = {k: v.detach().float().numpy() for k, v in policy.net.flat_parameters().items()}
    core = _core.Core(params, native_every, interval_ns)
    core.set_heading(policy.governor.constants() if policy.governor else None)  # as the exported RAPTOR_HEADING
    return core


def test_c_struct_follows_the_parameter_schema():
    header = (REPO / "firmware" / "raptor_policy.h").read_text()
    struct = header[header.index("typedef struct {\n    float input_weight"):header.index("} raptor_weights_t;")]
    fields = re.findall(r"float (\w+)((?:\[\w+\])+);", struct)
    dims = {"RAPTOR_HIDDEN_DIM": 16, "RAPTOR_INPUT_DIM": 22, "RAPTOR_GATES_DIM": 48, "RAPTOR_OUTPUT_DIM": 4}
    c_shapes = [tuple(dims[d] for d in re.findall(r"\[(\w+)\]", shape)) for _, shape in fields]
    assert c_shapes == [shape for _, shape in PARAMETER_LAYOUT]


@pytest.mark.parametrize("kind", ["official", "random"])
@pytest.mark.parametrize("rate_hz", [100, 400])
def test_pybind_core_matches_torch_runner(kind, rate_hz):
    policy = _policy(kind)
    native_every = rate_hz // 100
    ts, obs = parity_sequence(policy, rate_hz, steps=500, nan_step=None)
    core = _core_for(policy, native_every)
    actions, status = core.control(ts, obs)
    runner = policy.runner(native_every)
    runner.reset(1)
    o = torch.as_tensor(obs)
    ref = torch.stack([runner.control(o[t:t + 1, FW_P], o[t:t + 1, FW_Q], o[t:t + 1, FW_V], o[t:t + 1, FW_W],
                                      o[t:t + 1, FW_PREV_ACTION])[0][0] for t in range(len(o))]).numpy()
    assert np.abs(actions - ref).max() <= 1e-5
    native = (status & _core.STATUS_NATIVE_STEP) != 0
    np.testing.assert_array_equal(native, np.arange(500) % native_every == 0)


def test_nan_observation_gives_safe_action_and_the_next_valid_one_recovers():
    policy = _policy("random")
    ts, obs = parity_sequence(policy, 400, steps=120, nan_step=None)
    clean = _core_for(policy, 4).control(np.delete(ts, 60), np.delete(obs, 60, axis=0))[0]
    bad = obs.copy()
    bad[60, 4] = np.inf
    core = _core_for(policy, 4)
    core.set_safe_action(np.array([-1, -1, -1, -1], np.float32))
    actions, status = core.control(ts, bad)
    assert status[60] & _core.STATUS_INPUT_INVALID and not status[61] & _core.STATUS_INPUT_INVALID
    np.testing.assert_array_equal(actions[60], [-1, -1, -1, -1])
    # the invalid call changed nothing: the rest equals a run without it
    np.testing.assert_allclose(np.delete(actions, 60, axis=0), clean, atol=1e-7)


def test_output_guard_keeps_non_finite_actions_from_the_motors():
    """Finite weights whose result overflows: the core returns the safe action, says so, and restarts the GRU at h0
    (the next finite result is the network's own again)."""
    policy = _policy("random")
    ts, obs = parity_sequence(policy, 400, steps=40, nan_step=None)
    params = {k: v.detach().float().numpy().copy() for k, v in policy.net.flat_parameters().items()}
    core = _core_for(policy, 4)
    core.set_safe_action(np.array([-1, -1, -1, -1], np.float32))
    good, status = core.control(ts, obs)
    assert np.isfinite(good).all() and not (status & _core.STATUS_OUTPUT_INVALID).any()
    big = dict(params)
    big["input_layer.bias"] = np.full(16, 3e38, np.float32)
    big["input_layer.weight"] = np.zeros((16, 22), np.float32)
    big["input_layer.weight"][:, 11] = 3e38  # R[2][2] ~ 1 near level: finite weights, but the sums overflow to inf
    core = _core.Core(big, 4, 0)
    core.set_safe_action(np.array([-1, -1, -1, -1], np.float32))
    actions, status = core.control(ts, obs)
    bad = (status & _core.STATUS_OUTPUT_INVALID) != 0
    assert bad.all() and np.isfinite(actions).all()
    np.testing.assert_array_equal(actions[bad], -1.0)
    np.testing.assert_allclose(core.hidden, params["gru.h0"], atol=0)


def test_timing_status_flags():
    policy = _policy("random")
    ts, obs = parity_sequence(policy, 400, steps=400, nan_step=None)
    core = _core_for(policy, 4, interval_ns=2_500_000)
    _, status = core.control(ts, obs)
    assert not (status & (_core.STATUS_TIMING_JITTER | _core.STATUS_TIMING_BIAS)).any()
    jittery = ts.copy()
    jittery[150:] += np.uint64(3_000_000)  # one late call in the second window
    core = _core_for(policy, 4, interval_ns=2_500_000)
    _, status = core.control(jittery, obs)
    assert status[210] & _core.STATUS_TIMING_JITTER and not status[99] & _core.STATUS_TIMING_JITTER
    slow = np.arange(400, dtype=np.uint64) * np.uint64(4_000_000)  # 250 Hz instead of 400 Hz
    _, status = _core_for(policy, 4, interval_ns=2_500_000).control(slow, obs)
    assert status[-1] & _core.STATUS_TIMING_BIAS
    back = ts.copy()
    back[10] = back[8]
    _, status = _core_for(policy, 4).control(back, obs)
    assert status[10] & _core.STATUS_TIMESTAMP_INVALID


def _run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=300)


def _device_actions(stdout: str) -> np.ndarray:
    rows = [line.split()[2:6] for line in stdout.splitlines() if line.startswith("step ")]
    return np.array([[int(h, 16) for h in r] for r in rows], dtype=np.uint32).view(np.float32)


@pytest.mark.parametrize("kind", ["official", "default", "random"])
def test_host_c_and_qemu_cortex_m_agree_with_the_pybind_core(tmp_path, kind):
    """`make run-host run-m4 run-m7` of the generic export: the published policy, the shipped default (whose
    provenance holds shell globs) and a random student with hostile metadata."""
    policy = rp.load("default") if kind == "default" else _policy(kind)
    if kind == "random":
        path = tmp_path / "random.safetensors"
        policy.save(path)
        name = str(path)
    else:
        name = kind
    out = tmp_path / "export"
    export(name, "generic", out, rate_hz=400)
    seq = np.load(out / "raptor_test_sequence.npz")
    ref, _ = _core_for(policy, 4).control(seq["timestamps_ns"], seq["observations"])
    r = _run(["make", "-s", "run-host", f"BUILD={tmp_path / 'build'}"], out)
    assert r.returncode == 0, r.stdout + r.stderr
    host = _device_actions(r.stdout)
    assert host.shape == ref.shape and np.abs(host - ref).max() <= 1e-5
    np.testing.assert_array_equal(host[50], [-1, -1, -1, -1])  # NaN at step 50: the safe action
    if not has_arm:
        pytest.skip("arm-none-eabi-gcc / qemu-system-arm not installed (CI installs them)")
    for target in ("run-m4", "run-m7"):
        r = _run(["make", "-s", target, f"BUILD={tmp_path / 'build'}"], out)
        assert r.returncode == 0, r.stdout + r.stderr  # QEMU's exit code is the self-test verdict
        assert "verdict pass" in r.stdout
        dev = _device_actions(r.stdout)
        assert np.abs(dev - ref).max() <= 1e-5, target


def test_metadata_reaches_c_as_exact_escaped_strings(tmp_path):
    """Provenance and names holding comment delimiters, quotes, backslashes, trigraphs, newlines and non-ASCII text
    compile with -Wall -Wextra -Werror -pedantic, and the string constants hold the exact text (cut past the C99
    minimum literal length, saying so)."""
    from raptor.policy_export.c_headers import weights_header

    policy = _policy("random")
    (tmp_path / "raptor_policy_weights.h").write_text(weights_header(policy, None, "a */ path /* \\ é.safetensors"))
    for name in ("raptor_policy.h", "raptor_schema.h"):
        shutil.copy(REPO / "firmware" / name, tmp_path)
    (tmp_path / "main.c").write_text('#include <stdio.h>\n#include "raptor_policy_weights.h"\n'
                                     'int main(void) { fputs(RAPTOR_POLICY_NAME, stdout); putchar(0);'
                                     ' fputs(RAPTOR_POLICY_PROVENANCE_JSON, stdout); return RAPTOR_WEIGHTS.gru_h0[0]'
                                     ' > 1e9f; }\n')
    r = _run(["gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "main.c", "-o", "show"], tmp_path)
    assert r.returncode == 0, r.stderr
    out = subprocess.run([str(tmp_path / "show")], capture_output=True, check=True).stdout
    name, prov = out.split(b"\0")
    assert name.decode() == HOSTILE
    full = __import__("json").dumps(policy.metadata["provenance"], sort_keys=True).encode()
    assert len(full) > 3500 and prov.startswith(full[:3500]) and b"[cut at 3500 of" in prov


def test_exporter_refuses_bad_policy_files(tmp_path):
    net = rp.RaptorPolicyNet()
    with torch.no_grad():
        net.input_layer.weight[0, 0] = float("nan")
    from safetensors.torch import save_file

    save_file({k: v.detach().contiguous() for k, v in net.flat_parameters().items()}, str(tmp_path / "nan.safetensors"),
              metadata={"raptor": __import__("json").dumps(default_metadata(source="test"))})

    tensors = {k: v.detach().clone() for k, v in rp.RaptorPolicyNet().flat_parameters().items()}
    tensors["gru.weight_hh"] = torch.zeros(48, 17)
    save_file(tensors, str(tmp_path / "shape.safetensors"), metadata={"raptor": __import__("json").dumps(
        default_metadata(source="test"))})
    cases = (("nan.safetensors", "input_layer.weight.*NaN"), ("shape.safetensors", r"gru.weight_hh.*\(48, 17\)"))
    for bad, message in cases:
        r = subprocess.run([sys.executable, "-m", "raptor", "export", "--policy", str(tmp_path / bad), "--out",
                            str(tmp_path / "o")], capture_output=True, text=True, timeout=120)
        assert r.returncode == 2 and re.search(message, r.stderr) and "Traceback" not in r.stderr
    r = subprocess.run([sys.executable, "-m", "raptor", "export", "--target", "nope", "--out", str(tmp_path)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "invalid choice: 'nope'" in r.stderr and "rltools" in r.stderr


@pytest.mark.skipif(find_spec("onnxruntime") is None or find_spec("onnx") is None, reason="extra 'onnx' not installed")
def test_onnx_export_matches_torch(tmp_path):
    import onnxruntime as ort

    policy = _policy("random")
    path = tmp_path / "random.safetensors"
    policy.save(path)
    (onnx_path,) = export(str(path), "onnx", tmp_path / "onnx")
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    obs = np.random.default_rng(0).normal(0, 0.5, (100, 3, 22)).astype(np.float32)
    h = np.tile(sess.run(["initial_hidden"], {"observation": obs[0], "hidden": np.zeros((3, 16), np.float32)})[0],
                (3, 1))
    with torch.no_grad():
        ref, _ = policy.net(torch.as_tensor(obs))
    worst = 0.0
    for t in range(len(obs)):
        a, h = sess.run(["action", "hidden_out"], {"observation": obs[t], "hidden": h})
        worst = max(worst, float(np.abs(a - ref[t].numpy()).max()))
    assert worst <= 1e-5


def test_schema_header_is_generated_from_the_conventions():
    """firmware/raptor_schema.h holds the numbers C shares with Python; it must be what raptor.conventions generates
    (after changing conventions: python -m raptor.policy_export.schema)."""
    from raptor import conventions
    from raptor.policy.network import NUM_PARAMETERS
    from raptor.policy_export.schema import schema_header

    assert (REPO / "firmware" / "raptor_schema.h").read_text() == schema_header()
    assert conventions.NUM_PARAMETERS == NUM_PARAMETERS
    assert np.float32(conventions.RESET_ACTION_HISTORY) == np.float32(2 * 0.66 - 1)
    assert sorted(conventions.MOTOR_INDEX["px4"]) == [0, 1, 2, 3]


@pytest.mark.parametrize("scenario, lead", [("step", None), ("disturbance", None), ("tracking", 6.0)])
def test_raptor_eval_of_the_c_core_matches_the_torch_policy(scenario, lead):
    """The shipped default flown by its C core (pybind11 build, one instance per env, yaw setpoints through
    raptor_policy_set_yaw_setpoint) through the same loop as `raptor eval`, on the same starts: the same episodes
    terminate, returns within 0.1 %, positions within 1 cm over 5 s (float32 differences of ~1e-6 per action grow in
    closed loop, to ~3 mm here). On the figure-eight with a setpoint-acceleration lead, the accelerations through
    raptor_policy_set_acceleration_setpoint."""
    from raptor.policy_export.core_policy import CorePolicy
    from raptor.runtime import run_episodes
    from raptor.sim.airframe_files import resolve_airframes
    from raptor.sim.scenarios import make_env, scenario_config

    policy = rp.load("default")
    if lead is not None:
        policy = policy.with_lead(rp.SetpointLead(gain_s2=lead))
    afs = resolve_airframes("crazyflie,x500,race")
    cfg = scenario_config(scenario)
    runs = [run_episodes(p, make_env("raptor", afs, 3, cfg, seed=11), cfg.episode_steps)
            for p in (policy, CorePolicy(policy))]
    torch_run, c_run = runs
    assert np.array_equal(torch_run.terminated, c_run.terminated)
    assert np.allclose(c_run.returns, torch_run.returns, rtol=1e-3)
    assert np.abs(c_run.position_error - torch_run.position_error).max() < 0.01
