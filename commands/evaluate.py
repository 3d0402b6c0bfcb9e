"""`raptor eval`: fly a policy on airframes and scenarios, all episodes in one batch, and report metrics.

The scenarios are raptor.sim.scenarios' presets (hover, yaw, step, recovery, thrown, tracking, disturbance).

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
from pathlib import Path

import numpy as np
import torch

from raptor.errors import ConfigError
from raptor.fileio import atomic_write, atomic_write_text, check_writable_folder
from raptor.metrics import SUCCESS_RADIUS_M, Rollouts, markdown_table, success_in_envelope, summarize
from raptor.policy import load as load_policy
from raptor.policy.feedforward import SetpointLead
from raptor.policy.heading import HeadingGovernor
from raptor.policy.io import training_envelope
from raptor.sim.airframe import Airframe, limit_thrust_to_weight
from raptor.sim.airframe_files import resolve_airframes
from raptor.sim.scenarios import SCENARIOS, SIMULATORS, envelope_notes, rollout, scenario_config

HEADING_CHOICES = ("policy", "on", "off")


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
        ax.bar_label(bars, fmt="%.0f%%", fontsize=7)  # every bar labelled, 0 % included
        ax.set_xticks(range(len(per)), [k + (" (*)" if v.get("envelope_note") else "") for k, v in per.items()],
                      rotation=60, ha="right", fontsize=7)
        ax.set_ylim(0, 112)
        ax.set_ylabel("success [%]")
        if any(v.get("envelope_note") for v in per.values()):
            ax.set_xlabel("(*) outside the training envelope (see metrics.md)", fontsize=7)
    else:
        ax.hist([100 * s["success_rate"] for s in per.values()], bins=20)
        ax.set_xlabel("success per airframe [%]")
        ax.set_ylabel("airframes")
    inside = success_in_envelope(metrics)
    envelope = ("" if inside is None or not any(v.get("envelope_note") for v in per.values())
                else f", inside the envelope {100 * inside[0]:.1f} %")
    ax.set_title(f"{title}: success per airframe (overall {100 * metrics['overall']['success_rate']:.1f} %"
                 f"{envelope})", fontsize=10)
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
    pol = load_policy(policy_name, device=device)
    if heading != "policy":
        pol = pol.with_heading(HeadingGovernor() if heading == "on" else None)
    if lead != "policy":
        pol = pol.with_lead(None if lead == "off" else SetpointLead(gain_s2=_lead_gain(lead)))
    if out is not None:
        check_writable_folder(out)  # before the episodes fly, not after
    t0 = time.perf_counter()
    record: list | None = [] if render is not None else None
    r = rollout(pol, afs, scenario, episodes, seed, device, progress=progress, sim=sim, record=record,
                external=external)
    metrics = summarize(r)
    notes = envelope_notes(afs, list(metrics["per_airframe"]), training_envelope(pol.metadata))
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
