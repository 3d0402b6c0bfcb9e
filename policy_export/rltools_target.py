"""`raptor export --target rltools`: the policy as the one file stock PX4's RAPTOR module loads (`policy.tar`, an
RLtools checkpoint: raptor.policy.rltools), with a README that says how to upload, configure and engage it."""

from __future__ import annotations

import datetime as _dt
from pathlib import Path

from raptor.policy.rltools import EXAMPLE_BATCH, EXAMPLE_STEPS, checkpoint_name, write_tar
from raptor.policy_export.core_policy import file_sha256
from raptor.policy_export.sequences import self_test_sequence


def export_rltools(policy, policy_name: str, source: Path | None, out: Path) -> list[Path]:
    """policy.tar (weights, checkpoint name, the example mc_raptor replays, our metadata) and README.md in `out`."""
    out.mkdir(parents=True, exist_ok=True)
    sha = file_sha256(source)
    name = checkpoint_name(f"raptor/{policy.name}@{sha[:12]}" if sha != "n/a" else f"raptor/{policy.name}")
    # the example: two 5 s hover flights of this policy in our simulator (a crazyflie), the network's inputs
    x, _ = self_test_sequence(policy, steps=EXAMPLE_STEPS, batch=EXAMPLE_BATCH)
    meta = {**policy.metadata, "export": {"target": "rltools", "policy": str(policy_name), "source_sha256": sha,
                                          "checkpoint_name": name,
                                          "date": _dt.datetime.now(_dt.timezone.utc).isoformat()}}
    path = out / "policy.tar"
    write_tar(path, policy.net, name, x, meta)
    heading = (policy.metadata.get("deployment") or {}).get("heading")
    (out / "README.md").write_text(README.format(
        policy=policy_name, name=name, sha=sha, governed=(
            "This policy was trained and is flown by our runtimes in a governed heading frame (the frame turns toward "
            "a new yaw setpoint at most {rate} rad/s and never leads the vehicle's heading by more than {lead} rad)."
            .format(rate=heading.get("rate_rad_s", "?"), lead=heading.get("lead_rad", "?")))
        if isinstance(heading, dict) else "This policy carries no heading governor: it was trained on the spec's "
                                          "frame, as the published policy."))
    return [path, out / "README.md"]


README = """# RAPTOR policy for stock PX4 (`mc_raptor`): {policy}

`policy.tar` is an RLtools checkpoint, the file PX4's own RAPTOR module (`src/modules/mc_raptor`, PX4 main,
planned for v1.18, experimental) loads at start: no firmware build. Checkpoint name `{name}`; source file sha256
`{sha}`; the policy's full metadata (provenance, evaluation) is in the entry `raptor/metadata`, which RLtools ignores.

## Upload

The module reads `PX4_STORAGEDIR/raptor/policy.tar`, on a flight controller `/fs/microsd/raptor/policy.tar`:

    # MAVLink FTP, e.g. with MAVProxy (QGroundControl: Analyze Tools > MAVLink Console / File Transfer)
    ftp mkdir /fs/microsd/raptor
    ftp put policy.tar /fs/microsd/raptor/policy.tar

or copy it onto the SD card. Reboot (the module loads the file once, at start). It checks the file against the
example stored inside (two 500-step sequences replayed through the network: mean |difference| < 1e-5) and refuses
to start otherwise; `raptor export` wrote the example from this very network, and `raptor eval --policy policy.tar`
reads the file back the same way.

## Parameters

- `MC_RAPTOR_ENABLE 1`: start the module (reboot after setting it).
- `MC_RAPTOR_OFFB 1`: the RAPTOR mode replaces Offboard (a companion computer's setpoints fly it); 0 keeps it as
  its own external mode.
- `IMU_GYRO_RATEMAX`: the module runs at this rate and ticks the policy at 100 Hz; set a multiple of 100 (e.g. 400).
- `MC_RAPTOR_INTREF 1`: fly the module's built-in Lissajous reference instead of `trajectory_setpoint`.

## Engage

The module registers an external flight mode "RAPTOR": `commander mode ext<ID>` from the shell (`commander status`
lists the id), or the mode list of a ground station. It follows `trajectory_setpoint` (position, velocity, yaw):
the position error is clipped to 0.5 m and the velocity error to 1 m/s, both turned into the setpoint yaw's frame.
Take off and hand over in a hover; keep a manual mode on a switch.

## What the module does not carry

{governed} `mc_raptor` turns its frame to the yaw setpoint at once: a yaw step of more than about 30 deg shows the
policy an attitude error it was not trained on (a 180 deg step: the frame jumps by pi). Send yaw setpoints as a
ramp of at most ~1.5 rad/s (or steps of <= 0.5 rad), or fly our own PX4 module (`raptor export --target px4`, built
into the firmware), which runs the governed frame on board. Neither does it carry our deployment-rate handling,
NaN guard or timing checks: it is the authors' module, flown as they wrote it.
"""
