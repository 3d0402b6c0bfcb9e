"""The simulator, the episode loop and the batched trainer on a CUDA device agree with the CPU (marked `gpu`:
`python3 -m pytest -m gpu`, on a machine with a GPU; skipped elsewhere). CPU and CUDA generators draw different
numbers, so both sides fly the same records made on the CPU (env.load), not the same seed."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from raptor import policy as rp
from raptor.runtime import run_episodes
from raptor.sim.airframe_files import resolve_airframes
from raptor.sim.config import EnvConfig
from raptor.sim.env import BatchedQuadrotorEnv
from raptor.sim.scenarios import scenario_config

DEVICE = os.environ.get("RAPTOR_TEST_GPU_DEVICE", "cuda")  # "cpu" runs the same checks against itself
pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(DEVICE.startswith("cuda") and not torch.cuda.is_available(), reason="no CUDA device")]


def _pair(cfg: EnvConfig, afs, episodes: int, seed: int):
    cpu = BatchedQuadrotorEnv(afs, episodes, cfg, seed=seed)
    cpu.reset()
    gpu = BatchedQuadrotorEnv(afs, episodes, EnvConfig(**{**cfg.__dict__, "device": DEVICE}), seed=seed)
    gpu.load(cpu.s)
    return cpu, gpu


def test_physics_on_the_device_matches_the_cpu_in_float64():
    afs = resolve_airframes("crazyflie,x500,race") + resolve_airframes("sampled:5:3")
    cfg = EnvConfig(target="figure_eight", dtype="float64", check_inputs=False)
    cpu, gpu = _pair(cfg, afs, 4, seed=1)
    gen = torch.Generator().manual_seed(2)
    for _ in range(200):
        a = torch.rand((cpu.num_envs, 4), generator=gen, dtype=torch.float64) * 0.6 - 0.3
        r_c, t_c, o_c = cpu.physics_step(a)
        r_g, t_g, o_g = gpu.physics_step(a.to(DEVICE))
        assert torch.equal(t_c, t_g.cpu())
        assert torch.allclose(o_c, o_g.cpu(), atol=1e-9, rtol=0) and torch.allclose(r_c, r_g.cpu(), atol=1e-9)
    assert torch.allclose(cpu.state, gpu.state.cpu(), atol=1e-9, rtol=0)


@pytest.mark.parametrize("scenario", ["hover", "step", "tracking"])
def test_the_episode_loop_on_the_device_gives_the_cpus_metrics(scenario):
    """The default policy through run_episodes on the device and on the CPU, same records (float32): the same
    episodes terminate and succeed, returns within 0.1 %."""
    afs = resolve_airframes("sampled:8:77")
    cfg = scenario_config(scenario)
    cpu, gpu = _pair(cfg, afs, 4, seed=3)
    runs = [run_episodes(rp.load("default", device=dev), env, cfg.episode_steps, reset=False, trajectories=False,
                         airframe_names=[a.name for a in afs]) for dev, env in (("cpu", cpu), (DEVICE, gpu))]
    c, g = (r.streamed for r in runs)
    assert np.array_equal(c["terminated"], g["terminated"])
    assert (c["success"] != g["success"]).mean() <= 0.05  # float32 differences may tip an episode at the 0.1 m edge
    assert np.allclose(c["return"], g["return"], rtol=1e-3)


def test_batched_ppo_trains_on_the_device():
    from raptor.rl.config import TrainConfig, teacher_airframe, training_env_config
    from raptor.rl.ppo import BatchedPPO, PPOConfig

    tc = TrainConfig(device=DEVICE)
    afs = [teacher_airframe(a, tc) for a in resolve_airframes("crazyflie,x500")]
    ppo = BatchedPPO(afs, PPOConfig(envs_per_teacher=64), training_env_config(tc), seed=0)
    for _ in range(3):
        stats = ppo.iterate()
    for loss in (stats.policy_loss, stats.value_loss, stats.kl, stats.std):
        assert loss.shape == (2,) and bool(torch.isfinite(loss).all())
