"""The scenario library: every flight task of `raptor eval` as a named EnvConfig preset, the env factory of each
simulator, and `rollout`, which flies a policy on airframes x episodes of a scenario through the one episode loop
(raptor.runtime.run_episodes). Teacher evaluation and calibration, DAgger's selection, HIL and the SITL bridges fly
these same scenarios; the `raptor eval` command (raptor.commands.evaluate) adds tables, plots and files.

Scenarios:
| hover       | spec 4.2 starts within +-0.5 m (RAPTOR's post-training init for every airframe), tilt up to 1 rad    |
| yaw         | hover starts turned by a uniform random yaw (any heading)                                             |
| step        | hover starts; the target jumps by 0.5 m in a random direction at a time U(1 s, 3 s), and its yaw by  |
|             | U(-180, 180) deg at another time U(1 s, 3 s); success = within 0.1 m and 10 deg from 2 s after the |
|             | last step to the end; 3 m crash box                                                                  |
| recovery    | tilt up to 90 deg with any yaw, 1.5x initial velocities, 3x initial body rates, target at the origin  |
| thrown      | any attitude (tilt up to 180 deg), speed up to 3 m/s, body rates up to 10 rad/s per axis, judged by a |
|             | physical crash box (3 m on any axis), not the training termination (1-3.6 m, 2 m/s, 35 rad/s)         |
| tracking    | a figure-eight (radius 0.5 m, 5 s period) at z = 0; observed p and v are relative to the moving target |
| disturbance | hover plus a constant force (std 10 % of weight) and an Ornstein-Uhlenbeck gust (std 5 %, 0.5 s)      |
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

from raptor.errors import ConfigError
from raptor.metrics import Rollouts
from raptor.runtime import run_episodes
from raptor.sim import mdp
from raptor.sim.airframe import Airframe
from raptor.sim.config import DisturbanceConfig, EnvConfig
from raptor.sim.env import BatchedQuadrotorEnv
from raptor.sim.sampling import RandomizationRanges

SCENARIOS = ("hover", "yaw", "step", "recovery", "thrown", "tracking", "disturbance")
CRASH_BOX_M = 3.0


def scenario_config(name: str, device: str = "cpu", dtype: str = "float32") -> EnvConfig:
    """The EnvConfig preset of an evaluation scenario."""
    init = mdp.InitialStateConfig(max_position_m=0.5)  # post-training: init_90_deg for every airframe (spec 4.1)
    base = EnvConfig(device=device, dtype=dtype, target="hover", check_inputs=False, init=init)
    if name == "hover":
        return base
    if name == "yaw":
        return replace(base, init=replace(init, any_yaw_fraction=1.0))
    if name == "step":
        return replace(base, target="step", crash_box_m=CRASH_BOX_M, step_yaw_rad=math.pi)
    if name == "thrown":
        # the airframes' init ranges are 1 m/s and 1 rad/s (named and sampled alike): scales 3 and 10
        return replace(base, crash_box_m=CRASH_BOX_M,
                       init=replace(init, attitude="full", linear_velocity_scale=3.0, angular_velocity_scale=10.0))
    if name == "recovery":
        return replace(base, init=replace(init, attitude="tilt_any_yaw", max_tilt_rad=math.pi / 2,
                                          linear_velocity_scale=1.5, angular_velocity_scale=3.0))
    if name == "tracking":
        return replace(base, target="figure_eight")
    if name == "disturbance":
        return replace(base, disturbance=DisturbanceConfig(constant_force_fraction=0.1, gust_fraction=0.05))
    raise ConfigError(f"unknown scenario '{name}'; choose one of {', '.join(SCENARIOS)}")


SIMULATORS = ("raptor", "mujoco")


def make_env(sim: str, airframes: Sequence[Airframe], episodes: int, cfg: EnvConfig, seed: int,
             external: tuple[str, str] | None = None):
    if external is not None:
        from raptor.sim.mujoco_engine import ExternalMujocoEnv

        return ExternalMujocoEnv(external[0], external[1], episodes, cfg, seed=seed)
    if sim == "raptor":
        return BatchedQuadrotorEnv(airframes, episodes, cfg, seed=seed)
    if sim == "mujoco":
        from raptor.sim.mujoco_engine import MujocoQuadrotorEnv

        return MujocoQuadrotorEnv(airframes, episodes, cfg, seed=seed)
    raise ConfigError(f"unknown simulator '{sim}'; choose one of {', '.join(SIMULATORS)}")


def rollout(policy, airframes: Sequence[Airframe], scenario: str = "hover", episodes: int = 100, seed: int = 0,
            device: str = "cpu", steps: int | None = None, config: EnvConfig | None = None,
            progress: bool = False, sim: str = "raptor", record: list | None = None,
            external: tuple[str, str] | None = None, trajectories: bool = True,
            heading: bool | None = None) -> Rollouts:
    """Fly `policy` (raptor.policy.Policy) on every airframe x `episodes`, all envs in one batch.

    sim: "raptor" (our simulator) or "mujoco"; record: a list that receives the state (B, 17) of every step;
    external: (mapping, models_dir) of an external MJCF quadrotor (MuJoCo), replacing `airframes`;
    trajectories: False keeps only the per-episode metrics, accumulated on the device (no per-step copies);
    heading: False gives the policy no yaw setpoint and judges by position only (as HIL and Betaflight, which carry
    none), None where the scenario has one."""
    cfg = config or scenario_config(scenario, device)
    env = make_env(sim, airframes, episodes, cfg, seed, external)
    hooks = [] if record is None else [StateRecorder(record)]
    return run_episodes(policy, env, steps or cfg.episode_steps, hooks=hooks, trajectories=trajectories,
                        heading=heading, airframe_names=[a.name for a in airframes],
                        progress=f"eval {scenario}" if progress else None)


class StateRecorder:
    """A run_episodes hook: appends the state (B, 17) after every env step to a list (numpy)."""

    def __init__(self, out: list) -> None:
        self.out = out

    def after_step(self, t, env, action, reward, terminated, alive) -> None:
        self.out.append(env.state.detach().cpu().numpy().copy())


def envelope_notes(airframes: Sequence[Airframe], keys: Sequence[str],
                   thrust_to_weight: tuple[float, float] | None = None) -> dict[str, str]:
    """Per airframe key, why its figures may not count against the policy: an airframe outside the thrust-to-weight
    range the policy was trained on (raptor.policy.io.training_envelope; default RAPTOR's sampler, 1.5-5), e.g.
    flightmare's 12 for the published policy."""
    lo, hi = thrust_to_weight or RandomizationRanges().thrust_to_weight
    notes = {}
    for key, af in zip(keys, airframes):
        t2w = af.thrust_to_weight
        if not lo * 0.95 <= t2w <= hi * 1.05:
            notes[key] = (f"outside the training envelope (thrust-to-weight {t2w:.1f}; the policy was trained on "
                          f"{lo:g}-{hi:g}): an extrapolation, shown for reference")
    return notes
