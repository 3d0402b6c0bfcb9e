"""MuJoCo as a second physics engine: agreement with our simulator, closed loop, external Menagerie models."""

from __future__ import annotations

from importlib.util import find_spec  # noqa: E402

import numpy as np
import pytest
import torch

if find_spec("mujoco") is None:
    pytest.skip("mujoco not installed", allow_module_level=True)

from conftest import MENAGERIE  # noqa: E402

from raptor.commands.evaluate import evaluate  # noqa: E402
from raptor.conventions import Q
from raptor.errors import ConfigError  # noqa: E402
from raptor.sim.airframe import named_airframe  # noqa: E402
from raptor.sim.config import EnvConfig  # noqa: E402
from raptor.sim.env import BatchedQuadrotorEnv  # noqa: E402
from raptor.sim.mujoco_engine import MujocoQuadrotorEnv, gl_available, load_mapping  # noqa: E402  (sets MUJOCO_GL)
from raptor.sim.sampling import sample_airframes  # noqa: E402

requires_official = pytest.mark.skipif(find_spec("foundation_policy") is None, reason="extra 'official' missing")


def test_open_loop_agreement_within_a_millimetre_over_half_a_second():
    """Airframes whose J and J_inv are consistent (MuJoCo has one inertia tensor: 1 / J_inv)."""
    afs = [named_airframe(n) for n in ("crazyflie", "x500_sim", "mrs")] + sample_airframes(
        3, seed=3, round_like_reference=False)
    cfg = EnvConfig(dtype="float64", target="hover")
    ours = BatchedQuadrotorEnv(afs, 4, cfg, seed=1)
    mj = MujocoQuadrotorEnv(afs, 4, cfg, seed=1)
    ours.reset()
    start = dict(force=ours.force.clone(), torque=ours.torque.clone())
    mj.set_state(ours.state.clone(), **start)
    ours.set_state(ours.state.clone(), **start)
    hover = torch.tensor([a.hover_action for a in afs], dtype=torch.float64).repeat_interleave(4)[:, None]
    gen = torch.Generator().manual_seed(0)
    for _ in range(50):  # 0.5 s
        a = (hover + 0.1 * torch.randn(len(hover), 4, generator=gen, dtype=torch.float64)).clamp(-1, 1)
        ours.physics_step(a)
        mj.physics_step(a)
    assert (ours.state[:, :3] - mj.state[:, :3]).abs().max() <= 1e-3
    assert (ours.state[:, Q] - mj.state[:, Q]).abs().max() <= 1e-3
    # and the engines are not trivially identical: MuJoCo integrated something
    assert (ours.state[:, :3] - mj.state[:, :3]).abs().max() > 0


@pytest.mark.parametrize("policy", [pytest.param("official", marks=requires_official), "default"])
def test_policy_success_in_mujoco_matches_ours(policy):
    """The published policy and our shipped default student fly zero-shot in MuJoCo as in our simulator."""
    for name in ("crazyflie", "x500"):
        ours = evaluate(policy, name, "hover", episodes=40, seed=2)["overall"]["success_rate"]
        mj = evaluate(policy, name, "hover", episodes=40, seed=2, sim="mujoco")["overall"]["success_rate"]
        assert abs(ours - mj) <= 0.05 and mj >= 0.85, (name, ours, mj)


@pytest.mark.parametrize("model", ["bitcraze_crazyflie_2", "skydio_x2"])
@pytest.mark.parametrize("policy", [pytest.param("official", marks=requires_official), "default"])
def test_menagerie_models_fly_through_their_mappings(model, policy):
    m = evaluate(policy, scenario="hover", episodes=8, seed=0, sim="mujoco", mujoco_model=model,
                 models_dir=str(MENAGERIE))["overall"]
    assert m["termination_rate"] <= 0.125 and m["final_position_error_median"] < 0.1


def test_mapping_errors_are_clear(tmp_path):
    with pytest.raises(ConfigError, match="no MuJoCo mapping 'nope'.*skydio_x2"):
        load_mapping("nope")
    with pytest.raises(ConfigError, match="MJCF .* not found"):
        evaluate("official", scenario="hover", episodes=1, sim="mujoco", mujoco_model="skydio_x2",
                 models_dir=str(tmp_path))
    with pytest.raises(ConfigError, match="--render needs --sim mujoco"):
        evaluate("official", "crazyflie", episodes=1, render=str(tmp_path))


@requires_official
def test_render_writes_frames_where_gl_exists(tmp_path):
    ok, why = gl_available()
    if not ok:
        pytest.skip(f"no OpenGL back-end: {why}")
    m = evaluate("official", "crazyflie", "hover", episodes=1, seed=0, sim="mujoco", render=str(tmp_path / "r"))
    frames = sorted((tmp_path / "r").glob("frame_*.png"))
    assert len(frames) == 100 and frames[0].read_bytes()[:4] == b"\x89PNG" and "frames" in m["config"]["render"]
    assert np.asarray(__import__("matplotlib.pyplot").pyplot.imread(frames[0])).std() > 0.01  # not blank
