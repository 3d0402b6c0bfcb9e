"""The hand-off of raptor.policy_export to the stages after it (HIL, the SITL bridges): the portable C core
(firmware/raptor_policy.c, the code every target runs) through its pybind11 build, set up once from a policy
(`core_for`), as a policy of the one episode loop (`CorePolicy`: one core per env, fed the observation a flight
controller gives it), and the id a device reports for the policy it flies (`policy_id`). `raptor eval`'s figures
for a policy and for its C build are pinned to each other by tests/test_export.py through this adapter."""

from __future__ import annotations

import hashlib
import math
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from raptor.conventions import OBS_P, OBS_PREV_ACTION, OBS_V, Q, W
from raptor.policy import DEFAULT_POLICY_FILE
from raptor.policy.io import official_checkpoint_path

POLICY_ID_LEN = 16  # a device reports the first 16 hex digits of its policy file's sha256 (HIL HELLO_ACK)


def source_file(policy_name: str) -> Path | None:
    """The file a policy name ('official', 'default' or a path) is loaded from."""
    if policy_name == "official":
        return official_checkpoint_path()
    if policy_name == "default":
        return Path(str(resources.files("raptor").joinpath(DEFAULT_POLICY_FILE)))
    return Path(policy_name)


def file_sha256(path: Path | None) -> str:
    """The file's sha256 (hex), or "n/a" where there is no file."""
    if path is None or not path.is_file():
        return "n/a"
    return hashlib.sha256(path.read_bytes()).hexdigest()


def policy_id(policy_name: str) -> str:
    """The id a device reports for this policy: its file's sha256, first POLICY_ID_LEN hex digits (as the export
    writes it into the firmware)."""
    return file_sha256(source_file(policy_name))[:POLICY_ID_LEN]


def core_for(policy, native_every: int = 1):
    """A pybind11 C core (raptor.policy_export._core.Core) with the policy's weights, called native_every times per
    100 Hz step, its heading frame and setpoint lead as the export writes them (RAPTOR_HEADING, RAPTOR_LEAD)."""
    from raptor.policy_export import _core  # the compiled extension: built with the package

    params = {k: v.detach().float().numpy() for k, v in policy.net.flat_parameters().items()}
    core = _core.Core(params, native_every, 0)
    core.set_heading(policy.governor.constants() if policy.governor else None)
    core.set_lead(policy.lead.constants() if policy.lead else None)
    return core


def firmware_observation(state: torch.Tensor, obs: torch.Tensor) -> np.ndarray:
    """The C core's input (B, 17) float32 [p, q wxyz, v, w body, previous action] from the env's state (B, 17) (the
    quaternion) and its student observation (B, 22) (p and v relative to the target, the previous action)."""
    s, o = state.detach().cpu().numpy(), obs.detach().cpu().numpy()
    return np.concatenate([o[:, OBS_P], s[:, Q], o[:, OBS_V], s[:, W], o[:, OBS_PREV_ACTION]], -1).astype(np.float32)


class CorePolicy:
    """A policy (raptor.policy.Policy) run by the C core: B instances, 100 Hz calls (native_every 1), the heading
    frame as exported (RAPTOR_HEADING), the yaw setpoint passed per call where the env's target has one."""

    def __init__(self, policy) -> None:
        self.policy = policy
        self.lead = policy.lead  # run_episodes passes acceleration setpoints where there is one (core_for sets it)
        self.env = None
        self.cores: list = []

    def bind(self, env) -> None:
        self.env = env

    def reset(self, batch_size: int) -> None:
        self.cores = [core_for(self.policy) for _ in range(batch_size)]
        self.k = 0

    accepts_acceleration = True

    def step(self, obs: torch.Tensor, yaw_setpoint: torch.Tensor | None = None,
             acceleration_setpoint: torch.Tensor | None = None) -> torch.Tensor:
        x = firmware_observation(self.env.state, obs)
        ts = np.array([10**9 + self.k * 10**7], np.uint64)
        self.k += 1
        out = np.zeros((len(self.cores), 4), np.float32)
        for b, core in enumerate(self.cores):
            if yaw_setpoint is not None:
                y = float(yaw_setpoint[b])
                core.set_yaw_setpoint(math.cos(y), math.sin(y))
            if acceleration_setpoint is not None:
                core.set_acceleration_setpoint(*(float(v) for v in acceleration_setpoint[b]))
            out[b] = core.control(ts, x[b:b + 1])[0][0]
        return torch.as_tensor(out)
