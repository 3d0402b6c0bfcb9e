"""The foundation policy: network, files, the published checkpoint, and deployment semantics.

    policy = raptor.policy.load("official")      # or "default", or a path to a .safetensors policy file
    policy.reset(batch_size=8)
    actions = policy.step(obs)                   # obs (8, 22) -> raw actions (8, 4); the simulator clips
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from raptor.errors import InputError, PolicyFileError, PolicyOutputError
from raptor.policy.feedforward import SetpointLead
from raptor.policy.heading import HeadingFrame, HeadingGovernor, yaw_to_unit
from raptor.policy.io import (
    check_metadata,
    default_metadata,
    load_official_checkpoint,
    load_policy_file,
    save_policy,
)
from raptor.policy.network import NUM_PARAMETERS, PARAMETER_LAYOUT, RaptorPolicyNet
from raptor.policy.rltools import read_tar
from raptor.policy.runner import DeploymentRunner

__all__ = ["Policy", "load", "RaptorPolicyNet", "DeploymentRunner", "NUM_PARAMETERS", "PARAMETER_LAYOUT",
           "save_policy", "default_metadata", "HeadingGovernor", "SetpointLead"]

DEFAULT_POLICY_FILE = "data/policies/default.safetensors"


class Policy:
    """A loaded policy with a batch of recurrent states: `reset(B)`, then `step(obs)` once per 10 ms.

    A policy whose file names a heading governor (metadata["deployment"]["heading"], raptor.policy.heading) flies
    in the reference-heading frame; `with_heading(None)` or `with_heading(HeadingGovernor(...))` overrides it."""

    def __init__(self, net: RaptorPolicyNet, metadata: dict, device: str | torch.device = "cpu",
                 dtype: torch.dtype = torch.float32) -> None:
        self.net = net.to(device=device, dtype=dtype).eval()
        self.metadata = metadata
        self.device, self.dtype = torch.device(device), dtype
        self.h: torch.Tensor | None = None
        governor = HeadingGovernor.from_metadata(metadata)
        self.heading: HeadingFrame | None = HeadingFrame(governor) if governor else None
        self.lead: SetpointLead | None = SetpointLead.from_metadata(metadata)

    @property
    def governor(self) -> HeadingGovernor | None:
        return self.heading.governor if self.heading is not None else None

    def with_heading(self, governor: HeadingGovernor | None) -> Policy:
        """The same network with another heading governor (None: the plain world-frame observation)."""
        meta = dict(self.metadata)
        meta["deployment"] = {**(meta.get("deployment") or {}),
                              "heading": governor.to_metadata() if governor else None}
        return Policy(self.net, meta, self.device, self.dtype)

    def with_lead(self, lead: SetpointLead | None) -> Policy:
        """The same network with another setpoint-acceleration lead (None: acceleration setpoints ignored)."""
        meta = dict(self.metadata)
        meta["deployment"] = {**(meta.get("deployment") or {}), "lead": lead.to_metadata() if lead else None}
        return Policy(self.net, meta, self.device, self.dtype)

    @property
    def name(self) -> str:
        return str(self.metadata.get("name", self.metadata.get("provenance", {}).get("source", "policy")))

    def reset(self, batch_size: int = 1, mask: torch.Tensor | None = None) -> None:
        """Reset every recurrent state to the learned h0 (or only where mask (B,) is True)."""
        h0 = self.net.initial_hidden(batch_size).detach()
        if mask is None or self.h is None:
            self.h = h0
        else:
            self.h = torch.where(torch.as_tensor(mask, device=self.device)[:, None], h0, self.h)
        if self.heading is not None:
            self.heading.reset(batch_size, mask, like=h0)

    accepts_acceleration = True  # run_episodes passes the target's acceleration where there is one

    @torch.no_grad()
    def step(self, obs, yaw_setpoint=None, acceleration_setpoint=None):
        """obs (B, 22) numpy or torch -> raw actions (B, 4) of the same kind. Not clipped (the reference's
        `evaluate_step`); the simulator clips to [-1, 1], the deployment runner clamps. yaw_setpoint (B,) rad,
        world: the heading to turn to (with a heading governor; None = hold the heading of the first step after
        reset). acceleration_setpoint (B, 3) m/s^2 world: the setpoint's acceleration, which leads the position
        error the network sees where the policy has a lead (raptor.policy.feedforward; None = no lead)."""
        is_numpy = not isinstance(obs, torch.Tensor)
        x = torch.as_tensor(np.asarray(obs) if is_numpy else obs, device=self.device, dtype=self.dtype)
        if x.ndim != 2 or x.shape[1] != 22:
            raise InputError(f"observation has shape {tuple(x.shape)}, expected (B, 22): [p, R(q) row-major, v, w, "
                             "previous action]")
        if self.h is None or self.h.shape[0] != x.shape[0]:
            if self.h is not None:
                raise InputError(f"observation batch {x.shape[0]} does not match reset({self.h.shape[0]}); "
                                 "call reset(batch_size) first")
            self.reset(x.shape[0])
        if not bool(torch.isfinite(x).all()):
            raise InputError("observation contains NaN or inf; the policy state was not changed")
        if self.lead is not None and acceleration_setpoint is not None:
            acc = torch.as_tensor(np.asarray(acceleration_setpoint) if not isinstance(acceleration_setpoint,
                                  torch.Tensor) else acceleration_setpoint, device=self.device, dtype=self.dtype)
            if acc.shape != (x.shape[0], 3) or not bool(torch.isfinite(acc).all()):
                raise InputError(f"acceleration_setpoint needs ({x.shape[0]}, 3) finite values (m/s^2, world), got "
                                 f"shape {tuple(acc.shape)}")
            x = self.lead.apply(x, acc)
        if self.heading is not None:
            sp = None
            if yaw_setpoint is not None:
                yaw = torch.as_tensor(np.asarray(yaw_setpoint) if not isinstance(yaw_setpoint, torch.Tensor)
                                      else yaw_setpoint, device=self.device, dtype=self.dtype).reshape(-1)
                if yaw.shape[0] != x.shape[0] or not bool(torch.isfinite(yaw).all()):
                    raise InputError(f"yaw_setpoint needs {x.shape[0]} finite angles (rad), got shape "
                                     f"{tuple(yaw.shape)}")
                sp = yaw_to_unit(yaw)
            x = self.heading.apply(x, sp)
        a, h = self.net.step(x, self.h)
        if not bool(torch.isfinite(a).all() & torch.isfinite(h).all()):  # one device sync per step
            raise PolicyOutputError(f"policy '{self.name}' gives NaN or inf for a finite observation: its weights "
                                    "overflow (a damaged or diverged policy); the policy state was not changed")
        self.h = h
        return a.cpu().numpy() if is_numpy else a

    def runner(self, native_every: int = 1) -> DeploymentRunner:
        return DeploymentRunner(self.net, native_every, self.governor, self.lead)

    def save(self, path: str | os.PathLike) -> None:
        save_policy(path, self.net, self.metadata)


def load(name_or_path: str | os.PathLike, device: str | torch.device = "cpu",
         dtype: torch.dtype = torch.float32) -> Policy:
    """'official' (the published RAPTOR policy), 'default' (ours, shipped), or a path to a policy file."""
    name = str(name_or_path)
    if name == "official":
        net, meta = load_official_checkpoint()
        meta["name"] = "official"
    elif name == "default":
        ref = resources.files("raptor").joinpath(DEFAULT_POLICY_FILE)
        if not ref.is_file():
            raise PolicyFileError("this raptor ships no default policy yet (it comes from `raptor distill`); "
                                  "use --policy official or a policy file")
        net, meta = load_policy_file(Path(str(ref)))
        meta["name"] = "default"
    elif name.endswith(".h5"):
        net, meta = load_official_checkpoint(name)
        meta["name"] = Path(name).stem
    elif name.endswith(".tar"):  # an RLtools checkpoint (PX4 mc_raptor's policy.tar): ours round-trips its metadata

        net, meta, facts = read_tar(name)
        if meta:
            check_metadata(meta, f"RLtools checkpoint '{name}' (raptor/metadata)")
        else:
            meta = default_metadata(source=f"RLtools checkpoint {Path(name).name}",
                                    upstream_meta=f"checkpoint_name: {facts['checkpoint_name']}")
        meta.setdefault("name", Path(name).stem)
    else:
        if not Path(name).exists():
            if os.sep in name or Path(name).suffix:
                raise PolicyFileError(f"policy file '{name}' does not exist")
            raise PolicyFileError(f"no policy '{name}': use official, default, or a path to a policy file")
        net, meta = load_policy_file(name)
        meta.setdefault("name", Path(name).stem)
    return Policy(net, meta, device, dtype)
