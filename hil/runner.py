"""`raptor hil`: the simulator on the host, the policy on the device, lock-step over a framed serial link.

Episodes are the ones `raptor eval` flies for the same policy, airframes, scenario and seed (same initial states
and disturbances), run one after another against the single policy instance on the device. Every action the
device returns is checked against the pybind11 build of the same C core on the same inputs. Metrics use the
`raptor eval` keys, plus a `link` section (round-trip histogram, timeouts, corrupt frames, device resets).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from raptor.conventions import NUM_PARAMETERS, SELF_TEST_TOLERANCE
from raptor.errors import ConfigError, RaptorError
from raptor.fileio import append_line, atomic_write_text, check_writable_folder
from raptor.hil import protocol as P
from raptor.hil.link import (
    HilClient,
    LinkClosed,
    Transport,
)
from raptor.metrics import markdown_table, summarize
from raptor.policy import Policy
from raptor.policy import load as load_policy
from raptor.policy_export.core_policy import core_for, firmware_observation, policy_id
from raptor.policy_export.export import export
from raptor.runtime import concatenate, run_episodes
from raptor.sim.airframe_files import resolve_airframes
from raptor.sim.env import BatchedQuadrotorEnv
from raptor.sim.scenarios import scenario_config


def build_device(policy_name: str, target: str, workdir: Path, policy: Policy | None = None) -> Path:
    """Export the policy and build the HIL firmware: target 'host' (a process) or 'm4' (STM32F405 for QEMU);
    policy: the same policy already loaded."""
    if not shutil.which("make"):
        raise RaptorError("building the HIL firmware needs make and a C compiler")
    export(policy_name, "generic", workdir / "export", rate_hz=400, policy=policy)
    rule = "hil-host" if target == "host" else "hil-m4"
    r = subprocess.run(["make", "-s", rule, f"BUILD={workdir / 'build'}"], cwd=workdir / "export",
                       capture_output=True, text=True)
    if r.returncode:
        raise RaptorError(f"building the HIL firmware failed:\n{r.stdout}{r.stderr}".strip())
    return workdir / "build" / "hil" / ("hil_device" if target == "host" else "hil_device_m4.elf")


def connect(client: HilClient, attempts: int = 20, expected_policy: str | None = None) -> P.Packet:
    """Handshake: HELLO until the device answers (it may still be booting). expected_policy: the id (policy_id) the
    device must report, or None to accept any."""
    for _ in range(attempts):
        ack = client.hello()
        if ack is not None:
            version, _, n_params, self_test_error, _, raw_id = ack.fields
            device_policy = raw_id.rstrip(b"\0").decode("ascii", "replace")
            if expected_policy is not None and device_policy != expected_policy:
                raise RaptorError(f"the device flies policy {device_policy!r} (sha256 prefix of its file), this host "
                                  f"evaluates {expected_policy!r}: flash the export of the same --policy "
                                  "(raptor hil --device qemu|host builds it)")
            if version != P.VERSION:
                raise RaptorError(f"device speaks HIL protocol {version}, this host {P.VERSION}")
            if n_params != NUM_PARAMETERS or not self_test_error <= SELF_TEST_TOLERANCE:
                raise RaptorError(f"device self-test failed (parameters {n_params}, error {self_test_error:.2e}): "
                                  "the firmware does not carry a valid policy")
            return ack
    raise RaptorError(f"no answer to HELLO after {attempts} tries: is the device running the raptor HIL firmware?")


class DevicePolicy:
    """The policy on the device as a run_episodes policy, one episode at a time: each call sends the observation
    (p, q, v, w relative to the target, previous action: 17 floats) with its timestamp and returns the device's
    action, or the safe action on a timeout; checks every action against the pybind11 build of the same C core on
    the same inputs; after a device reboot, handshakes and resets again (its policy state is lost)."""

    def __init__(self, client: HilClient, policy: Policy, policy_name: str, native_every: int, rate_hz: int,
                 safe_action: float, max_consecutive_timeouts: int, realtime: bool) -> None:
        self.policy = policy  # the pybind11 core checks the device against it
        self.client, self.id = client, policy_id(policy_name)
        self.native_every, self.interval_us = native_every, 1_000_000 // rate_hz
        self.safe = np.full(4, safe_action, np.float32)
        self.max_timeouts, self.realtime = max_consecutive_timeouts, realtime
        self.reboot = False
        client.on_boot = self._rebooted
        self.max_action_diff = 0.0
        self.episode = 0
        self.env = None

    def _rebooted(self) -> None:
        self.reboot = True

    def bind(self, env: BatchedQuadrotorEnv) -> None:
        self.env = env  # the quaternion is read from its state

    def reset(self, batch_size: int) -> None:
        if batch_size != 1:
            raise ConfigError("the device flies one episode at a time")
        self.core = core_for(self.policy, self.native_every)
        if not self.client.reset(self.native_every, self.interval_us):
            raise RaptorError("the device stopped answering (no acknowledgement of RESET)")
        self.k, self.consecutive = 0, 0
        self.now_ns = 1_000_000_000 + self.episode * 10**10
        self.episode += 1

    def step(self, obs: torch.Tensor) -> torch.Tensor:
        tick = time.perf_counter()
        if self.reboot:  # the device restarted: handshake again, its policy state is lost
            self.reboot = False
            connect(self.client, expected_policy=self.id)
            self.client.reset(self.native_every, self.interval_us)
            self.core.reset()
        obs17 = firmware_observation(self.env.state, obs)[0]
        ts = self.now_ns + self.k * self.interval_us * 1000
        self.k += 1
        ref, _ = self.core.control(np.array([ts], np.uint64), obs17[None])
        pkt = self.client.observe(ts, obs17)
        if pkt is None:
            self.consecutive += 1
            if self.consecutive >= self.max_timeouts:
                raise RaptorError(f"the device stopped answering ({self.consecutive} timeouts in a row)")
            action = self.safe
        else:
            self.consecutive = 0
            action = np.asarray(pkt.fields[:4], np.float32)
            self.max_action_diff = max(self.max_action_diff, float(np.abs(action - ref[0]).max()))
        if self.realtime:
            time.sleep(max(0.0, 0.01 / self.native_every - (time.perf_counter() - tick)))
        return torch.as_tensor(action)[None]


def run_hil(transport: Transport, policy_name: str = "official", airframes: str = "crazyflie",
            scenario: str = "hover", episodes: int = 10, seed: int = 0, rate_hz: int = 100,
            realtime: bool = False, timeout_s: float = 0.2, safe_action: float = -1.0,
            max_consecutive_timeouts: int = 100, out: str | Path | None = None, progress: bool = False,
            policy: Policy | None = None) -> dict:
    """Fly `raptor eval`'s episodes (same policy name, airframes, scenario and seed) with the policy on the device
    behind `transport`; policy: `policy_name` already loaded (else it is loaded here, once)."""
    if rate_hz % 100 or not 100 <= rate_hz <= 1000:
        raise ConfigError("--rate-hz must be 100, 200, ... 1000")
    if isinstance(episodes, bool) or not isinstance(episodes, int) or episodes <= 0:
        raise ConfigError(f"--episodes must be a positive number of episodes per airframe (got {episodes!r})")
    if out is not None:
        out = check_writable_folder(out)
        (out / "episodes.jsonl").unlink(missing_ok=True)
    native_every = rate_hz // 100
    afs = resolve_airframes(airframes)
    cfg = scenario_config(scenario)
    # the episodes of `raptor eval` with the same arguments: same initial states, disturbances and targets
    ref_env = BatchedQuadrotorEnv(afs, episodes, cfg, seed=seed)
    ref_env.reset()
    E, T = ref_env.num_envs, cfg.episode_steps
    client = HilClient(transport, timeout_s)
    policy = policy if policy is not None else load_policy(policy_name)
    device = DevicePolicy(client, policy, policy_name, native_every, rate_hz, safe_action, max_consecutive_timeouts,
                          realtime)
    log: dict = {"config": {"policy": policy_name, "airframes": airframes, "scenario": scenario,
                            "episodes_per_airframe": episodes, "seed": seed, "rate_hz": rate_hz}}
    error: str | None = None
    t_start = time.perf_counter()
    records = []  # episodes flown to their end: kept whatever happens to the link afterwards
    iterator = range(E)
    if progress:
        from tqdm import tqdm

        iterator = tqdm(iterator, desc="hil", unit="episode")
    try:
        hello = connect(client, expected_policy=device.id)
        log["device"] = {"hello": [f.rstrip(b"\0").decode("ascii", "replace") if isinstance(f, bytes) else f
                                   for f in hello.fields], "policy_id": device.id,
                         "handshake_requests": client.stats.requests,
                         "handshake_timeouts": client.stats.timeouts}
        # link statistics start after the handshake: the boot before it is no device reset, and HELLOs unanswered
        # while the device boots are no link fault
        client.stats = type(client.stats)()
        device.reboot = False
        for e in iterator:
            i = int(ref_env.airframe_index[e])
            af = afs[i]
            if native_every > 1:  # the plant steps at the control rate; the GRU still advances at 100 Hz
                p = json.loads(json.dumps(af.parameters))
                p["integration"]["dt"] = 0.01 / native_every
                af = type(af)(af.name, p, dict(af.meta))
            env = BatchedQuadrotorEnv([af], 1, replace(cfg, episode_steps=T * native_every), seed=seed)
            env.load(ref_env.s.rows([e]))
            # the device gets no yaw setpoint over the link: judged by position (heading=False)
            r = run_episodes(device, env, T, native_every=native_every, reset=False, heading=False,
                             airframe_names=[a.name for a in afs])
            r.airframe_index = np.array([i])
            records.append(r)
            if out is not None:  # each finished episode on disk as it ends
                end = T if r.first_termination[0] < 0 else r.first_termination[0] + 1
                append_line(out / "episodes.jsonl", json.dumps({
                    "episode": e, "airframe": af.name, "terminated": bool(r.terminated[0]),
                    "final_position_error_m": float(r.position_error[end, 0]), "return": float(r.returns[0])}))
    except LinkClosed as exc:
        error = f"device disconnected: {exc}"
    except RaptorError as exc:
        error = str(exc)
    finally:
        client.close()
    metrics = {}
    if records:
        metrics = summarize(concatenate(records))
        metrics["per_airframe"] = {k: v for k, v in metrics["per_airframe"].items() if v["episodes"] > 0}
    metrics["episodes_finished"] = len(records)
    metrics["episodes_planned"] = E
    metrics["link"] = client.stats.summary(client.decoder.stats)
    metrics["link"]["max_abs_action_diff_vs_pybind_core"] = device.max_action_diff
    metrics["config"] = {**log["config"], "wall_time_s": round(time.perf_counter() - t_start, 2)}
    metrics["device"] = log.get("device", {})
    if error is not None:
        metrics["error"] = error
    if out is not None:
        atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=1))
        if records:
            title = f"HIL {policy_name}, {scenario}" + ("" if error is None else f" ({len(records)} of {E} episodes)")
            atomic_write_text(out / "metrics.md", markdown_table(metrics, title))
    if error is not None:
        kept = f"; the {len(records)} episodes finished before it are in {out}/metrics.json" if out is not None else ""
        raise RaptorError(error + (f" (log kept in {out}/metrics.json{kept})" if out is not None else ""))
    return metrics
