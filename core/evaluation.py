"""`raptor eval`: fly a policy on airframes and scenarios, all episodes in one batch, and report metrics.

Scenarios (each a named preset of EnvConfig):
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

`raptor eval --scenario all` flies every scenario and prints one row per scenario; `--compare POLICY` flies another
policy on the same starts (same seed) and prints its figures beside.

Metrics per episode: success (not terminated and within 0.1 m of the target for the whole last second; scenario step:
within 0.1 m and 10 deg of the setpoint from 2 s after the last setpoint step to the end),
termination, final position error (survivors), settling time (first time after which the error stays below
0.1 m), RMS tracking error (over the steps before termination), and the return under the RAPTOR reward (summed
up to and including the terminating step).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from raptor.errors import ConfigError
from raptor.fileio import atomic_write, atomic_write_text, check_writable_folder
from raptor.metrics import (  # noqa: F401  (re-exported: raptor.evaluation's names before raptor.metrics existed)
    STEP_SETTLE_S,
    SUCCESS_RADIUS_M,
    SUCCESS_WINDOW_STEPS,
    SUCCESS_YAW_RAD,
    MetricStream,
    Rollouts,
    episode_metrics,
    heading_error,
    summarize,
)
from raptor.policy.feedforward import SetpointLead
from raptor.runtime import run_episodes
from raptor.sim import mdp
from raptor.sim.airframe import Airframe, limit_thrust_to_weight, resolve_airframes
from raptor.sim.env import BatchedQuadrotorEnv, DisturbanceConfig, EnvConfig
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
HEADING_CHOICES = ("policy", "on", "off")


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


def envelope_notes(airframes: Sequence[Airframe], keys: Sequence[str]) -> dict[str, str]:
    """Per airframe key, why its figures may not count against the policy: an airframe outside the range of the
    sampler the policies were trained on (thrust-to-weight), e.g. flightmare's 12."""
    lo, hi = RandomizationRanges().thrust_to_weight
    notes = {}
    for key, af in zip(keys, airframes):
        t2w = af.thrust_to_weight
        if not lo * 0.95 <= t2w <= hi * 1.05:
            notes[key] = (f"outside the training envelope (thrust-to-weight {t2w:.1f}; the policies were trained on "
                          f"{lo:g}-{hi:g}): an extrapolation, shown for reference")
    return notes


def markdown_table(metrics: dict, title: str = "") -> str:
    def f(x, fmt):
        return "-" if x is None else format(x, fmt)

    rows = [f"### {title}" if title else "", "",
            "| airframe | episodes | success | terminated | final error mean / median [m] | settling [s] | "
            "RMS error [m] | mean return |", "|---|---|---|---|---|---|---|---|"]
    items = list(metrics["per_airframe"].items()) + [("**overall**", metrics["overall"])]
    for name, s in items:
        if s.get("envelope_note"):
            name = f"{name} (*)"
        rows.append(f"| {name} | {s['episodes']} | {100 * s['success_rate']:.1f}% | {100 * s['termination_rate']:.1f}% "
                    f"| {f(s['final_position_error_mean'], '.3f')} / {f(s['final_position_error_median'], '.3f')} "
                    f"| {f(s['settling_time_mean_s'], '.2f')} | {s['rms_tracking_error_mean']:.3f} "
                    f"| {s['mean_return']:.1f} |")
    notes = [f"(*) {k}: {v['envelope_note']}" for k, v in metrics["per_airframe"].items() if v.get("envelope_note")]
    if notes:
        inside = [v for v in metrics["per_airframe"].values() if not v.get("envelope_note")]
        if inside:
            eps = sum(v["episodes"] for v in inside)
            rate = sum(v["success_rate"] * v["episodes"] for v in inside) / eps
            notes.append(f"Success within the training envelope: {100 * rate:.1f}% of {eps} episodes.")
        rows += [""] + notes
    return "\n".join(rows).strip() + "\n"


def plot(r: Rollouts, metrics: dict, out: Path, title: str) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = []
    names = r.airframe_names
    shown = list(range(min(len(names), 12)))
    cols = min(len(shown), 4)
    rows = math.ceil(len(shown) / cols)
    t = np.arange(r.position_error.shape[0]) * r.dt_s

    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3.4 * rows), squeeze=False)
    for k, i in enumerate(shown):
        ax = axes[k // cols][k % cols]
        palette = ["tab:blue", "tab:orange", "tab:green", "tab:purple", "tab:brown"]
        for j, e in enumerate(np.flatnonzero(r.airframe_index == i)[:5]):
            end = r.first_termination[e] + 2 if r.terminated[e] else len(t)
            ax.plot(r.position[:end, e, 0], r.position[:end, e, 1], lw=1,
                    color="tab:red" if r.terminated[e] else palette[j])
            ax.plot(r.position[0, e, 0], r.position[0, e, 1], "k.", ms=4)
        e0 = np.flatnonzero(r.airframe_index == i)[0]
        if np.ptp(r.target[:, e0, :2], axis=0).max() > 1e-6:
            ax.plot(r.target[:, e0, 0], r.target[:, e0, 1], "k--", lw=0.8)
        else:
            ax.plot(r.target[0, e0, 0], r.target[0, e0, 1], "kx", ms=7)
        ax.set_title(names[i], fontsize=9)
        ax.set_xlabel("x [m]")
        ax.set_ylabel("y [m]")
        ax.set_aspect("equal", adjustable="datalim")
    for k in range(len(shown), rows * cols):
        axes[k // cols][k % cols].axis("off")
    shown_eps = np.concatenate([np.flatnonzero(r.airframe_index == i)[:5] for i in shown])
    key = "top view, first 5 episodes per airframe; dot = start, x = target" + (
        ", dashed = target path" if np.ptp(r.target[:, :, :2], axis=0).max() > 1e-6 else "") + (
        "; red = terminated" if r.terminated[shown_eps].any() else "; none terminated")
    fig.suptitle(f"{title}: trajectories ({key})", fontsize=10)
    fig.tight_layout()
    files.append(out / "trajectories.png")
    atomic_write(files[-1], lambda tmp: fig.savefig(tmp, dpi=90, format="png"))
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(8, 4.5))
    for i in shown:
        sel = (r.airframe_index == i) & ~r.terminated
        if sel.any():
            med = np.median(r.position_error[:, sel], axis=1)
            (line,) = ax.plot(t, med, label=names[i])
            if len(shown) <= 4:  # more bands than that hide each other
                lo, hi = np.percentile(r.position_error[:, sel], [10, 90], axis=1)
                ax.fill_between(t, lo, hi, alpha=0.12, color=line.get_color())
    ax.axhline(SUCCESS_RADIUS_M, color="k", ls=":", lw=1, label=f"success radius {SUCCESS_RADIUS_M:g} m")
    ax.set_yscale("log")
    ax.set_xlabel("time [s]")
    ax.set_ylabel("position error [m]")
    ax.set_title(f"{title}: position error of surviving episodes (median"
                 + (", band 10-90 %)" if len(shown) <= 4 else ")"), fontsize=10)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    files.append(out / "position_error.png")
    atomic_write(files[-1], lambda tmp: fig.savefig(tmp, dpi=90, format="png"))
    plt.close(fig)

    per = metrics["per_airframe"]
    fig, ax = plt.subplots(figsize=(max(6, 0.35 * len(per)), 4) if len(per) <= 40 else (8, 4))
    if len(per) <= 40:
        bars = ax.bar(range(len(per)), [100 * s["success_rate"] for s in per.values()],
                      color=["tab:gray" if s.get("envelope_note") else "tab:blue" for s in per.values()])
        ax.bar_label(bars, fmt="%.0f%%", fontsize=7)
        ax.set_xticks(range(len(per)), [k + (" (*)" if v.get("envelope_note") else "") for k, v in per.items()],
                      rotation=60, ha="right", fontsize=7)
        ax.set_ylim(0, 112)
        ax.set_ylabel("success [%]")
        if any(v.get("envelope_note") for v in per.values()):
            ax.set_xlabel("(*) gray: outside the training envelope (see metrics.md)", fontsize=7)
    else:
        ax.hist([100 * s["success_rate"] for s in per.values()], bins=20)
        ax.set_xlabel("success per airframe [%]")
        ax.set_ylabel("airframes")
    ax.set_title(f"{title}: success per airframe (overall {100 * metrics['overall']['success_rate']:.1f} %)")
    fig.tight_layout()
    files.append(out / "success.png")
    atomic_write(files[-1], lambda tmp: fig.savefig(tmp, dpi=90, format="png"))
    plt.close(fig)
    return files


def evaluate(policy_name: str, airframes: str | Sequence[Airframe] = "named", scenario: str = "hover",
             episodes: int = 100, seed: int = 0, device: str = "cpu", out: str | Path | None = None,
             progress: bool = False, sim: str = "raptor", render: str | Path | None = None,
             mujoco_model: str | None = None, models_dir: str | None = None, heading: str = "policy",
             max_thrust_to_weight: float | None = None, lead: str = "policy") -> dict:
    """Evaluate a policy ('official', 'default' or a file) and optionally write metrics.json, metrics.md, plots.

    heading: "policy" (the file's heading governor, raptor.policy.heading), "on" (the default governor for any
    policy, e.g. the published one) or "off" (the plain world frame).
    lead: "policy" (the file's setpoint-acceleration lead, raptor.policy.feedforward), "off", or a gain K in 1/s^2
    (the lead a_des / K, at most 0.3 m, for any policy): it acts where the target moves (tracking).
    max_thrust_to_weight: fly airframes above it with their motor command capped to it (a deployment setting, as
    Betaflight's motor_output_limit; raptor.sim.airframe.limit_thrust_to_weight), or None: as they are.
    sim: "raptor" or "mujoco"; render (MuJoCo only): a directory for PNG frames of the first episodes;
    mujoco_model (with models_dir): fly an external MJCF quadrotor through a mapping instead of `airframes`."""
    from raptor import policy as rp

    if scenario not in SCENARIOS:
        raise ConfigError(f"unknown scenario '{scenario}'; choose one of {', '.join(SCENARIOS)}")
    if episodes <= 0:
        raise ConfigError("--episodes must be positive")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("--device cuda requested but torch sees no CUDA device")
    if sim not in SIMULATORS:
        raise ConfigError(f"unknown simulator '{sim}'; choose one of {', '.join(SIMULATORS)}")
    if render is not None and sim != "mujoco":
        raise ConfigError("--render needs --sim mujoco")
    if sim == "mujoco" and device != "cpu":
        raise ConfigError("--sim mujoco runs on the CPU; drop --device")
    external = None
    if mujoco_model is not None:
        from raptor.sim.mujoco_engine import external_airframe, load_mapping

        if sim != "mujoco" or models_dir is None:
            raise ConfigError("--mujoco-model needs --sim mujoco and --models-dir DIR (the folder with the MJCF)")
        external = (mujoco_model, models_dir)
        afs = [external_airframe(load_mapping(mujoco_model), models_dir)]
        airframes = f"mujoco:{mujoco_model}"
    else:
        afs = resolve_airframes(airframes) if isinstance(airframes, str) else list(airframes)
    if max_thrust_to_weight is not None:
        afs = [limit_thrust_to_weight(a, max_thrust_to_weight) for a in afs]
    if heading not in HEADING_CHOICES:
        raise ConfigError(f"--heading must be one of {', '.join(HEADING_CHOICES)}, got {heading!r}")
    pol = rp.load(policy_name, device=device)
    if heading != "policy":
        pol = pol.with_heading(rp.HeadingGovernor() if heading == "on" else None)
    if lead != "policy":
        pol = pol.with_lead(None if lead == "off" else SetpointLead(gain_s2=_lead_gain(lead)))
    if out is not None:
        check_writable_folder(out)  # before the episodes fly, not after
    t0 = time.perf_counter()
    record: list | None = [] if render is not None else None
    r = rollout(pol, afs, scenario, episodes, seed, device, progress=progress, sim=sim, record=record,
                external=external)
    metrics = summarize(r)
    notes = envelope_notes(afs, list(metrics["per_airframe"]))
    for key, note in notes.items():
        metrics["per_airframe"][key]["envelope_note"] = note
    if notes:
        metrics["notes"] = [f"{k}: {v}" for k, v in notes.items()]
    metrics["config"] = {"policy": policy_name, "scenario": scenario, "episodes_per_airframe": episodes,
                         "seed": seed, "airframes": airframes if isinstance(airframes, str) else "custom",
                         "sim": sim, "device": device, "heading": heading,
                         "max_thrust_to_weight": max_thrust_to_weight,
                         "motor_output_limit": {a.name: round(a.meta["motor_output_limit"], 4) for a in afs
                                                if "motor_output_limit" in a.meta},
                         "heading_governor": pol.governor.to_metadata() if pol.governor else None,
                         "lead": pol.lead.to_metadata() if pol.lead else None,
                         "wall_time_s": round(time.perf_counter() - t0, 2)}
    if render is not None:
        metrics["config"]["render"] = (_render(afs, scenario, seed, record, Path(render)) if external is None else
                                       "rendering of external models is not supported yet")
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        title = f"{pol.name}, {scenario}"
        atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=1))
        atomic_write_text(out / "metrics.md", markdown_table(metrics, title))
        plot(r, metrics, out, title)
    return metrics


def _render(afs: Sequence[Airframe], scenario: str, seed: int, record: list, out: Path) -> str:
    """PNG frames (every 5th step, first 4 airframes x 1 episode) with MuJoCo's offscreen renderer, if GL works."""
    from raptor.sim.mujoco_engine import MujocoQuadrotorEnv, gl_available, render_episodes

    ok, why = gl_available()
    if not ok:
        msg = (f"rendering skipped: no OpenGL back-end for MuJoCo here ({why}); set MUJOCO_GL=egl or osmesa "
               "where one is installed")
        print(msg)
        return msg
    n_af = min(len(afs), 4)
    env = MujocoQuadrotorEnv(list(afs[:n_af]), 1, scenario_config(scenario), seed=seed)
    episodes = len(record[0]) // len(afs)
    rows = [i * episodes for i in range(n_af)]
    out.mkdir(parents=True, exist_ok=True)
    files = render_episodes(env, [x[rows] for x in record[::5]], out)
    return f"{len(files)} frames in {out}"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="fly a policy on airframes and scenarios: tables, JSON, plots",
                       description="Fly a policy on airframes and scenarios; print a table per airframe, and with "
                                   "--out write metrics.json, metrics.md and plots.")
    p.add_argument("--policy", default="default",
                   help="default (the shipped student) | official (the published RAPTOR policy) | PATH "
                        "(default: default)")
    p.add_argument("--airframes", default="named", help="named | NAME,... | FILE | sampled:N:SEED (default named)")
    p.add_argument("--scenario", default="hover", help=f"{' | '.join(SCENARIOS)} | all (default hover)")
    p.add_argument("--compare", default=None, metavar="POLICY",
                   help="also fly this policy (e.g. official) on the same starts and print its figures beside")
    p.add_argument("--episodes", type=int, default=100, help="episodes per airframe (default 100)")
    p.add_argument("--heading", default="policy", choices=HEADING_CHOICES,
                   help="heading frame (raptor.policy.heading): policy = as the policy file says (the default has "
                        "it, the published policy not), on = the default governor for every policy, off = none")
    p.add_argument("--lead", default="policy", metavar="policy|off|K",
                   help="setpoint-acceleration lead (raptor.policy.feedforward): policy = as the policy file says, "
                        "off = none, K = the lead a_des / K (1/s^2) for every policy flown; acts on moving targets")
    p.add_argument("--max-thrust-to-weight", type=float, default=None, metavar="T",
                   help="fly airframes above thrust-to-weight T with their motor command capped to T (as Betaflight's "
                        "motor_output_limit; e.g. 5, the training envelope's top) for every policy flown")
    p.add_argument("--seed", type=int, default=0, help="seed of the starts (default 0): same seed, same starts")
    p.add_argument("--out", default=None, help="directory for metrics.json, metrics.md and plots")
    p.add_argument("--device", default="cpu", help="cpu | cuda (default cpu)")
    p.add_argument("--sim", default="raptor", help="raptor (our simulator) | mujoco")
    p.add_argument("--render", default=None, help="with --sim mujoco: directory for PNG frames of a few episodes")
    p.add_argument("--mujoco-model", default=None,
                   help="with --sim mujoco: an external MJCF quadrotor by mapping (bitcraze_crazyflie_2, skydio_x2, "
                        "or a mapping .json) instead of --airframes")
    p.add_argument("--models-dir", default=None, help="folder holding the mapping's MJCF (e.g. MuJoCo Menagerie)")
    p.set_defaults(func=_cmd_eval)


def _cmd_eval(args: argparse.Namespace) -> int:
    scenarios = list(SCENARIOS) if args.scenario == "all" else [args.scenario]
    if args.scenario != "all" and args.scenario not in SCENARIOS:
        raise ConfigError(f"unknown scenario '{args.scenario}'; choose one of {', '.join(SCENARIOS)} or all")
    policies = [args.policy] + ([args.compare] if args.compare else [])
    rows: dict[str, dict[str, dict]] = {}
    for scenario in scenarios:
        for policy in policies:
            sub = None
            if args.out:
                sub = Path(args.out) if len(scenarios) == 1 and len(policies) == 1 else \
                    Path(args.out) / scenario / _slug(policy)
            metrics = evaluate(policy, args.airframes, scenario, args.episodes, args.seed, args.device, sub,
                               progress=True, sim=args.sim, render=args.render, mujoco_model=args.mujoco_model,
                               models_dir=args.models_dir, heading=args.heading,
                               max_thrust_to_weight=args.max_thrust_to_weight, lead=args.lead)
            rows.setdefault(scenario, {})[policy] = metrics
            if len(scenarios) == 1:
                print(markdown_table(metrics, f"{policy}, {scenario}, {args.sim}"))
    if len(scenarios) > 1 or len(policies) > 1:
        where = f"mujoco:{args.mujoco_model}" if args.mujoco_model else args.airframes
        table = scenario_table(rows, policies, f"{where}, {args.episodes} episodes per airframe, seed "
                                                f"{args.seed}, {args.sim}, heading {args.heading}")
        print(table)
        if args.out:
            atomic_write_text(Path(args.out) / "summary.md", table)
            atomic_write_text(Path(args.out) / "summary.json", json.dumps(
                {s: {p: m["overall"] for p, m in r.items()} for s, r in rows.items()}, indent=1))
    wall = sum(m["config"]["wall_time_s"] for r in rows.values() for m in r.values())
    print(f"({wall:.1f} s)" + (f"; wrote {args.out}" if args.out else ""))
    return 0


def _lead_gain(text: str) -> float:
    try:
        k = float(text)
    except ValueError:
        k = float("nan")
    if not (k > 0 and k < float("inf")):
        raise ConfigError(f"--lead must be policy, off or a positive gain in 1/s^2 (e.g. 6), got {text!r}")
    return k


def _slug(policy: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in Path(policy).stem)[:40] or "policy"


def scenario_table(rows: dict[str, dict[str, dict]], policies: list[str], title: str) -> str:
    """One row per scenario: each policy's overall success, termination, final-error median and RMS error."""
    def f(x, spec):
        return "-" if x is None else format(x, spec)

    head = "| scenario | " + " | ".join(f"{p}: success / terminated / final error median / RMS [m]"
                                         for p in policies) + " |"
    lines = [f"### {title}", "", head, "|---|" + "---|" * len(policies)]
    for scenario, by_policy in rows.items():
        cells = []
        for p in policies:
            o = by_policy[p]["overall"]
            cells.append(f"{100 * o['success_rate']:.1f} % / {100 * o['termination_rate']:.1f} % / "
                         f"{f(o['final_position_error_median'], '.3f')} / {o['rms_tracking_error_mean']:.3f}")
        lines.append(f"| {scenario} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
