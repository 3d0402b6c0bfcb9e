"""`raptor hil --sitl px4`: the exported module inside PX4 v1.15 SITL, flown in PX4's own simulator (SIH).

The PX4 tree is a PX4-Autopilot v1.15 folder or the release tarball (`--px4-tree`, or RAPTOR_PX4_TREE; a tarball is
unpacked once into the cache). `raptor export --target px4` writes the module in the layout EXTERNAL_MODULES_LOCATION
expects; PX4's own build (`make px4_sitl_raptor` where the tree has that board, else `px4_sitl_default`, with its
own flags and a Python environment from the tree's Tools/setup/requirements.txt, created once in the cache) builds
it. SIH runs headless, lockstep at 1x, on the loopback interface only (a private network namespace where
`unshare` is allowed; PX4's MAVLink is localhost-only by default otherwise). Everything is driven through PX4's own
shell clients (`px4-<command>`), which are what a ground station's MAVLink shell reaches:

1. boot, set RPT_EN 1 and the 400 Hz IMU rates, save, reboot; wait for the estimator (`commander check`)
2. `raptor_policy start` (self-test), `engage`, `commander arm`, `goto 0 0 -2`: take-off from rest to 2 m
3. episodes: position setpoint steps of up to 0.5 m per axis from rest (`goto`), 5 s each, sampled at ~10 Hz from
   `vehicle_local_position` (PX4's estimate, what the policy flies on) and SIH's ground truth
4. hand-backs: a NaN setpoint, a lost setpoint stream (RPT_SP_TO without keepalive), `release`, and RPT_EN = 0
   refusing to engage; each must end in Hold (nav_state 4) with the reason in `raptor_policy status`

The same episodes fly in our simulator on SIH's quadrotor modelled as an airframe (`sih_airframe`: SIH's default
parameters, linear thrust, no drag), and both tables are printed side by side as `raptor hil --sitl betaflight` does.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from raptor.errors import ConfigError, RaptorError
from raptor.fileio import atomic_write_text
from raptor.hil.px4_build import build_sitl, cache_dir, px4_source, px4_tree
from raptor.metrics import aggregate, judge_timed, markdown_table, summarize
from raptor.policy import load
from raptor.sim import mdp
from raptor.sim.airframe import Airframe
from raptor.sim.scenarios import rollout, scenario_config

PX4_VERSION = "v1.15"
EPISODE_S = 5.0
SAMPLE_HZ = 10.0
HOVER_NED = (0.0, 0.0, -2.0)
NAV_STATE_HOLD = 4
NAV_STATE_OFFBOARD = 14
PARAMS = {"RPT_EN": "1", "IMU_GYRO_RATEMAX": "400", "IMU_INTEG_RATE": "400", "COM_RC_IN_MODE": "4",
          "NAV_RCL_ACT": "0", "NAV_DLL_ACT": "0", "COM_DISARM_PRFLT": "-1", "COM_DISARM_LAND": "-1",
          "RPT_SP_TO": "0"}


def sih_airframe():
    """SIH's default quadrotor (simulator_sih/sih_params.c, v1.15) as an airframe of our simulator: 1 kg, inertia
    diag(0.025, 0.025, 0.03) kg m^2, rotors at (+-0.2, +-0.2) m, thrust 5 N x command per motor (linear), yaw
    torque 0.1 Nm x command (0.02 m per N), first-order motors with tau 0.05 s. SIH's linear drag (1 N per m/s) is
    not modelled. Motor order FR, BR, BL, FL (the policy's); yaw torque signs as PX4's Quad-X."""
    pos = [[0.2, -0.2, 0.0], [-0.2, -0.2, 0.0], [-0.2, 0.2, 0.0], [0.2, 0.2, 0.0]]
    dyn = {"rotor_positions": pos, "rotor_thrust_directions": [[0.0, 0.0, 1.0]] * 4,
           "rotor_torque_directions": [[0.0, 0.0, -1.0], [0.0, 0.0, 1.0], [0.0, 0.0, -1.0], [0.0, 0.0, 1.0]],
           "rotor_thrust_coefficients": [[0.0, 5.0, 0.0]] * 4, "rotor_torque_constants": [0.02] * 4,
           "rotor_time_constants_rising": [0.05] * 4, "rotor_time_constants_falling": [0.05] * 4, "mass": 1.0,
           "gravity": [0.0, 0.0, -9.81], "J": [[0.025, 0.0, 0.0], [0.0, 0.025, 0.0], [0.0, 0.0, 0.03]],
           "J_inv": [[40.0, 0.0, 0.0], [0.0, 40.0, 0.0], [0.0, 0.0, 1 / 0.03]],
           "hovering_throttle_relative": 9.81 / 20.0, "action_limit": {"min": 0.0, "max": 1.0}}
    return Airframe("sih_quadx", {"dynamics": dyn, "integration": {"dt": 0.01}, "mdp": {"init": {"max_angle": 0.0}}},
                    {"kind": "px4-sih", "source": "PX4 v1.15 src/modules/simulation/simulator_sih/sih_params.c"})


# ----------------------------------------------------------------------------------------------------------------
# The running SIH


def _loopback_prefix() -> list[str]:
    """Run PX4 in a private network namespace with only `lo` up, where allowed (root, or user namespaces)."""
    if shutil.which("unshare") and shutil.which("ip"):
        for flags in (["-n"], ["-rn"]):
            ok = subprocess.run(["unshare", *flags, "true"], capture_output=True).returncode == 0
            if ok:
                return ["unshare", *flags, "sh", "-c", 'ip link set lo up && exec "$0" "$@"']
    return []


class Sih:
    """PX4 SITL with SIH as a process, driven through its shell clients."""

    def __init__(self, build: Path, workdir: Path, log=print) -> None:
        self.build, self.work, self.log = build, workdir, log
        self.proc: subprocess.Popen | None = None
        self.isolated = False

    def start(self) -> None:
        self.work.mkdir(parents=True, exist_ok=True)
        if Path("/tmp/px4-sock-0").exists() and self.cmd("ver", "all", check=False, timeout=3)[0] == 0:
            raise ConfigError("another PX4 SITL instance 0 is running (/tmp/px4-sock-0): stop it (px4-shutdown) first")
        env = {**os.environ, "PX4_SIM_MODEL": "sihsim_quadx", "PX4_SIMULATOR": "sihsim", "HEADLESS": "1"}
        prefix = _loopback_prefix()
        self.isolated = bool(prefix)
        cmd = [*prefix, str(self.build / "bin" / "px4"), "-d", "-w", str(self.work), str(self.build / "etc"), "-s",
               "etc/init.d-posix/rcS"]
        self.logf = open(self.work / "px4.log", "a")
        self.proc = subprocess.Popen(cmd, cwd=self.work, env=env, stdout=self.logf, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RaptorError(f"PX4 exited during start-up (exit {self.proc.returncode}; log {self.work}/px4.log)")
            if "Startup script returned successfully" in (self.work / "px4.log").read_text(errors="replace"):
                return
            time.sleep(0.5)
        raise RaptorError(f"PX4 did not finish its start-up script in 60 s (log {self.work}/px4.log)")

    def cmd(self, name: str, *args: str, check: bool = True, timeout: float = 15.0) -> tuple[int, str]:
        r = subprocess.run([str(self.build / "bin" / f"px4-{name}"), *args], cwd=self.work, capture_output=True,
                           text=True, timeout=timeout)
        out = r.stdout + r.stderr
        if check and r.returncode != 0:
            raise RaptorError(f"px4-{name} {' '.join(args)} failed (exit {r.returncode}): {out.strip()[-300:]}")
        return r.returncode, out

    def stop(self) -> None:
        if self.proc is None:
            return
        try:
            self.cmd("shutdown", check=False, timeout=5)
            self.proc.wait(timeout=10)
        except (subprocess.TimeoutExpired, OSError):
            os.killpg(self.proc.pid, 9)
            self.proc.wait()
        self.proc = None
        self.logf.close()

    def topic(self, name: str) -> dict[str, str]:
        """One message of a uORB topic as field -> text (px4-listener)."""
        _, out = self.cmd("listener", name, "-n", "1", check=False, timeout=5)
        return dict(re.findall(r"^\s+([a-z_0-9\[\]]+): (\S+)", out, flags=re.M))

    def position(self, truth: bool = False) -> np.ndarray | None:
        f = self.topic("vehicle_local_position_groundtruth" if truth else "vehicle_local_position")
        try:
            return np.array([float(f["x"]), float(f["y"]), float(f["z"])])
        except (KeyError, ValueError):
            return None

    def nav_state(self) -> int | None:
        f = self.topic("vehicle_status")
        return int(f["nav_state"]) if "nav_state" in f else None

    def armed(self) -> bool:
        return self.topic("vehicle_status").get("arming_state") == "2"

    def wait_for(self, what: str, cond, timeout_s: float, every_s: float = 0.2) -> float:
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout_s:
            if cond():
                return time.monotonic() - t0
            time.sleep(every_s)
        raise RaptorError(f"PX4 SITL: {what} did not happen within {timeout_s:.0f} s (log {self.work}/px4.log)")


def boot(build: Path, workdir: Path, log=print, truth: bool = True) -> Sih:
    """A SIH instance with the module's parameters saved (the IMU rates need a reboot) and a converged estimator."""
    if workdir.exists():
        shutil.rmtree(workdir)
    sih = Sih(build, workdir, log)
    sih.start()
    wanted = {**PARAMS, "RPT_POS_SRC": "1" if truth else "0"}
    for k, v in wanted.items():
        sih.cmd("param", "set", k, v)
        shown = sih.cmd("param", "show", k, check=False)[1]
        if not re.search(rf"{k} \[[^\]]*\] ?: {re.escape(v)}(\.0+)?\b", shown):
            raise RaptorError(f"PX4 SITL: parameter {k} could not be set to {v} ({shown.strip()[-200:]}); is the "
                              "module's parameter file in the build (build/<board>/parameters.xml)?")
    sih.cmd("param", "save")
    sih.stop()
    sih.start()
    log("SIH running" + (" (private network namespace, loopback only)" if sih.isolated else
                         " (no network namespace available: PX4's MAVLink stays on localhost)"))
    sih.wait_for("the estimator to converge (commander check: OK)",
                 lambda: "Preflight check: OK" in sih.cmd("commander", "check", check=False)[1], 120, 2.0)
    return sih


# ----------------------------------------------------------------------------------------------------------------
# Flights


def _status(sih: Sih) -> str:
    return sih.cmd("raptor_policy", "status", check=False)[1]


def fly_episodes(sih: Sih, episodes: int, seed: int, log=print, truth: bool = True) -> dict:
    """Take-off, then `episodes` setpoint steps from rest; per-episode metrics on the position the module flies on
    (`truth`: SIH's ground truth, RPT_POS_SRC = 1; else PX4's estimate) and on the other one."""
    _, out = sih.cmd("raptor_policy", "start")
    m = re.search(r"self-test passed \(max error ([0-9.eE+-]+)\)", out + (sih.work / "px4.log").read_text())
    self_test = float(m.group(1)) if m else None
    sih.cmd("raptor_policy", "engage")
    sih.wait_for("Offboard", lambda: sih.nav_state() == NAV_STATE_OFFBOARD, 10)
    sih.cmd("commander", "arm")
    sih.wait_for("arming", sih.armed, 10)
    sih.cmd("raptor_policy", "goto", *map(str, HOVER_NED))
    t0 = time.monotonic()
    climb = []
    while time.monotonic() - t0 < 6.0:
        p = sih.position(truth=truth)
        if p is not None:
            climb.append((time.monotonic() - t0, float(p[2])))
        time.sleep(0.1)
    reached = next((t for t, z in climb if abs(z - HOVER_NED[2]) < 0.1), None)
    # SIH's ground-truth local frame and the estimator's differ by an origin shift: measured over 2 s of hover, so
    # that the other position's error below is its difference to the flown one plus the policy's
    offs = []
    for _ in range(10):
        a, b = sih.position(truth=truth), sih.position(truth=not truth)
        if a is not None and b is not None:
            offs.append(b - a)
        time.sleep(0.2)
    origin = np.mean(offs, axis=0) if offs else np.zeros(3)
    log(f"take-off from rest to 2 m: within 0.1 m after {reached if reached is None else round(reached, 1)} s")
    rng = np.random.default_rng(seed)
    setpoint = np.array(HOVER_NED)
    rows = []
    for k in range(episodes):
        setpoint = np.array(HOVER_NED) + rng.uniform(-0.5, 0.5, 3)
        sih.cmd("raptor_policy", "goto", *(f"{x:.4f}" for x in setpoint))
        t0 = time.monotonic()
        samples = []
        while (t := time.monotonic() - t0) < EPISODE_S:
            flown, other = sih.position(truth=truth), sih.position(truth=not truth)
            if flown is not None and other is not None:
                samples.append((t, np.linalg.norm(flown - setpoint), np.linalg.norm(other - origin - setpoint)))
            time.sleep(max(0.0, 1.0 / SAMPLE_HZ - 0.05))
        nav = sih.nav_state()
        rows.append(_episode(samples, nav != NAV_STATE_OFFBOARD))
        log(f"episode {k + 1}/{episodes}: step {np.round(setpoint - np.array(HOVER_NED), 2).tolist()} m NED, "
            f"final error {rows[-1]['final']:.3f} m ({'estimate' if truth else 'truth'} "
            f"{rows[-1]['final_other']:.3f} m), "
            f"{'success' if rows[-1]['success'] else 'no success'}")
    yaw = yaw_turn(sih, setpoint, truth, log)
    return {"self_test_max_error": self_test, "takeoff_s": reached, "episodes": rows,
            "truth_origin_offset_m": np.round(origin, 3).tolist(), "yaw_turn": yaw,
            "status": _status(sih).strip().splitlines()}


def yaw_turn(sih: Sih, position_ned: np.ndarray, truth: bool, log=print, turn_deg: float = 180.0,
             limit_s: float = 10.0) -> dict:
    """The heading frame in PX4: `goto` the same position with a yaw setpoint turn_deg away from the vehicle's heading;
    when the heading (SIH's ground truth) comes and stays within 10 deg, and the largest position error meanwhile."""
    f = sih.topic("vehicle_local_position_groundtruth")
    start = math.degrees(float(f.get("heading", "nan")))
    target = (start + turn_deg + 180.0) % 360.0 - 180.0
    sih.cmd("raptor_policy", "goto", *(f"{x:.4f}" for x in position_ned), f"{target:.2f}")
    t0, worst, within_since, err = time.monotonic(), 0.0, None, float("nan")
    while (t := time.monotonic() - t0) < limit_s:
        p, g = sih.position(truth=truth), sih.topic("vehicle_local_position_groundtruth")
        if p is not None and "heading" in g:
            worst = max(worst, float(np.linalg.norm(p - position_ned)))
            err = abs((math.degrees(float(g["heading"])) - target + 180.0) % 360.0 - 180.0)
            within_since = (within_since or t) if err < 10.0 else None
            if within_since is not None and t - within_since > 1.0:
                break
        time.sleep(0.1)
    out = {"setpoint_deg": round(target, 1), "from_deg": round(start, 1), "within_10_deg_after_s":
           None if within_since is None else round(within_since, 1), "final_heading_error_deg": round(err, 1),
           "max_position_error_m": round(worst, 3)}
    log(f"yaw turn by {turn_deg:g} deg: within 10 deg after {out['within_10_deg_after_s']} s, largest position "
        f"error while turning {worst:.3f} m")
    return out


def _episode(samples: list[tuple[float, float, float]], left_offboard: bool) -> dict:
    """One SITL episode from its samples (t s, error on the position the policy flies on, error on the other), judged
    by raptor.metrics as `raptor eval` judges ours."""
    t = np.array([s[0] for s in samples])
    own = judge_timed(t, np.array([s[1] for s in samples]), left_offboard, EPISODE_S)
    other = judge_timed(t, np.array([s[2] for s in samples]), left_offboard, EPISODE_S)
    return {"samples": len(t), "success": own["success"], "terminated": left_offboard, "final": own["final"],
            "final_other": other["final"], "rms": own["rms"], "rms_other": other["rms"],
            "settling_s": own["settling_s"], "success_other": other["success"]}


def hand_back_checks(sih: Sih, log=print) -> dict:
    """NaN setpoint, lost setpoint stream, release, RPT_EN = 0: each must end in Hold (or refuse to engage)."""
    results = {}

    def engaged() -> bool:
        return "engaged yes" in _status(sih)

    def check(name: str, trigger, expect: str) -> None:
        sih.cmd("raptor_policy", "engage")
        sih.wait_for("re-engaging in Offboard", engaged, 10)
        time.sleep(1.0)
        t0 = time.monotonic()
        trigger()
        try:
            sih.wait_for(f"Hold after {name}", lambda: sih.nav_state() == NAV_STATE_HOLD, 5, 0.1)
            hold = True
        except RaptorError:
            hold = False
        latency = time.monotonic() - t0
        status = _status(sih)
        results[name] = {"hold": hold, "reason_reported": expect in status, "latency_s": round(latency, 2)}
        log(f"hand-back on {name}: {'Hold' if hold else 'NO HOLD'} after {latency:.1f} s, reason "
            f"{'reported' if expect in status else 'MISSING'} ({expect})")
        time.sleep(2.0)  # PX4's Hold steadies the vehicle before the next check

    check("NaN setpoint", lambda: sih.cmd("raptor_policy", "goto", "nan", "0", "-2"), "invalid (NaN) setpoint")
    check("lost setpoint stream (RPT_SP_TO 0.5 s, no keepalive)",
          lambda: sih.cmd("param", "set", "RPT_SP_TO", "0.5"), "stale setpoint")
    sih.cmd("param", "set", "RPT_SP_TO", "0")
    check("release", lambda: sih.cmd("raptor_policy", "release"), "released by command")
    sih.cmd("param", "set", "RPT_EN", "0")
    _, out = sih.cmd("raptor_policy", "engage", check=False)
    time.sleep(1.0)
    refused = sih.nav_state() == NAV_STATE_HOLD and not engaged()
    results["RPT_EN 0"] = {"refused": refused}
    log(f"RPT_EN = 0: engage {'refused' if refused else 'NOT refused'}")
    sih.cmd("param", "set", "RPT_EN", "1")
    return results


def rest_config():
    """The SITL's task in our simulator: level, yaw 0 (PX4's vehicle faces north), at rest, within +-0.5 m of the
    setpoint: `raptor eval`'s hover scenario with the attitude and velocity ranges at zero."""
    init = mdp.InitialStateConfig(attitude="max_angle", linear_velocity_scale=0.0, angular_velocity_scale=0.0,
                                  max_position_m=0.5, guidance=0.0)
    return replace(scenario_config("hover"), init=init)


def sitl_metrics(flight: dict, name: str) -> dict:
    """The SITL episodes in `raptor eval`'s metrics.json shape (success on the position the policy flies on; the
    other one, estimate or ground truth, beside)."""
    rows = flight["episodes"]
    m = {"success": np.array([r["success"] for r in rows]), "terminated": np.array([r["terminated"] for r in rows]),
         "final_position_error": np.array([np.nan if r["terminated"] else r["final"] for r in rows]),
         "settling_time_s": np.array([np.nan if r["settling_s"] is None else r["settling_s"] for r in rows]),
         "rms_tracking_error": np.array([r["rms"] for r in rows]), "return": np.full(len(rows), np.nan),
         "action_change": np.full(len(rows), np.nan)}
    agg = aggregate(m, np.ones(len(rows), dtype=bool))
    agg["success_rate_other_position"] = float(np.mean([r["success_other"] for r in rows]))
    agg["final_position_error_median_other_position"] = float(np.median([r["final_other"] for r in rows]))
    return {"overall": agg, "per_airframe": {name: agg}}


def run_sitl_cli(args) -> int:
    """`raptor hil --sitl px4`: build, fly in SIH, hand-back checks, the same task in our simulator."""
    tree = px4_tree(px4_source(getattr(args, "px4_tree", None)))
    policy = load(args.policy)  # once: the export and the comparison flight share it
    build = build_sitl(args.policy, tree, policy=policy)
    out = Path(args.out) if args.out else cache_dir() / "sitl-run"
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    truth = getattr(args, "position_source", "truth") == "truth"
    sih = boot(build, out / "sih", truth=truth)
    try:
        flight = fly_episodes(sih, args.episodes, args.seed, truth=truth)
        hand_back = hand_back_checks(sih)
    finally:
        sih.stop()
    af = sih_airframe()
    sitl = sitl_metrics(flight, af.name)
    ours = summarize(rollout(policy, [af], "hover", max(args.episodes, 50), seed=args.seed,
                             config=rest_config()))
    a, b = sitl["overall"], ours["overall"]
    src = "SIH's ground truth (RPT_POS_SRC 1)" if truth else "PX4's estimate (EKF2 on SIH's GPS)"
    print(markdown_table(sitl, f"{args.policy} inside PX4 {PX4_VERSION} SITL (SIH), setpoint steps from rest, "
                               f"flying on {src}"))
    print(markdown_table(ours, f"{args.policy}, our simulator, SIH's quadrotor, starts at rest within +-0.5 m"))
    gap = 100 * (a["success_rate"] - b["success_rate"])
    ok_hand_back = all(v.get("hold", v.get("refused")) and v.get("reason_reported", True) for v in hand_back.values())
    print(f"success: SITL {100 * a['success_rate']:.1f}% (on the {'estimate' if truth else 'ground truth'}: "
          f"{100 * a['success_rate_other_position']:.1f}%) "
          f"vs our simulator {100 * b['success_rate']:.1f}% ({gap:+.1f} points); take-off to 2 m in "
          f"{flight['takeoff_s']} s; hand-backs {'all to Hold' if ok_hand_back else 'FAILED'}; self-test max error "
          f"{flight['self_test_max_error']}; {time.perf_counter() - t0:.0f} s")
    metrics = {**sitl, "config": {"policy": args.policy, "airframes": af.name, "scenario": "setpoint steps from rest",
                                  "episodes_per_airframe": args.episodes, "seed": args.seed,
                                  "sim": f"px4-{PX4_VERSION}-sitl-sih", "episode_s": EPISODE_S,
                                  "sample_hz": SAMPLE_HZ, "loopback_only": sih.isolated,
                                  "position_source": "ground truth" if truth else "estimate"},
               "flight": flight, "hand_back": hand_back, "raptor_eval": ours, "success_gap_points": gap}
    atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=1, default=float))
    return 0 if ok_hand_back else 1
