"""Teachers per CPU-hour, today's trainer against a pinned git revision's, in one job on one machine (issue #41).

Each trainer runs from its own installed snapshot (the revision's tree installed into a temporary folder; this
checkout as it is), one after the other, on the same airframes and recipe:

1. the crazyflie teacher's time to the quality bar (batched PPO, K = 1), per seed, the two trainers interleaved
   seed by seed; the bar (500 hover episodes, trimmed teacher, against the published policy on the same starts) is
   checked every --check-every seconds of training and not counted; a compile is reported, not counted;
2. `raptor train --airframes sampled:1000:0 --ids IDS --teachers-per-shard K --steps 3000000 --any-yaw 0.25` (the
   recipe), the new trainer with its speed options (--compile --finish-early): wall time of the whole command
   (training, selection evaluations, finalization, files), teachers at the bar, and the teachers' quality on their
   500 fresh judged episodes each (success, termination, action smoothness).

    python benchmarks/teacher_speedup.py --baseline-rev cf43f09 --ids 500-563 --k 64 --seeds 5 --out runs/speedup

Figures are per hour of this machine (2 cores, both trainers with 2 threads): teachers-to-bar per hour = teachers at
the bar x 3600 / wall seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CRAZYFLIE = r"""
import json, sys, time, torch
torch.set_num_threads(2)
from raptor.rl.ppo import BatchedPPO, PPOConfig
from raptor.rl.teacher import QualityBar, evaluate_teachers, reference_termination, trimmed_copy
try:  # where the revision keeps them (rl/config.py since the split of rl/train.py)
    from raptor.rl.config import TrainConfig, teacher_airframe
except ImportError:
    from raptor.rl.train import TrainConfig, teacher_airframe
from raptor.sim.airframe import named_airframe
from raptor.sim.env import EnvConfig
seed, budget, every, compile_ = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), sys.argv[4] == "1"
finalize = sys.argv[5] == "finalize"
BAR, SEED = QualityBar(), 1_000_003
af = teacher_airframe(named_airframe("crazyflie"), TrainConfig())
ref = reference_termination([af], BAR.episodes, seed=SEED)[0][0]
kw = {"compile": True} if compile_ else {}
ppo = BatchedPPO([af], PPOConfig(), EnvConfig(observation="privileged", check_inputs=False,
                 episode_steps=TrainConfig().train_episode_steps, **kw), seed=seed)
t0 = time.perf_counter(); ppo.iterate(); first = time.perf_counter() - t0  # the compile, where there is one
train_s, nxt, out = 0.0, every, {"reached": False}
while train_s < budget:
    t0 = time.perf_counter(); ppo.iterate(); train_s += time.perf_counter() - t0
    if train_s >= nxt:
        nxt += every
        if finalize:  # what the trainer's finalization does to a snapshot (raptor.rl.shard.write_teachers)
            import copy
            from raptor.rl.teacher import TeacherActors, calibrate_gain, calibrate_offsets
            cfg = TrainConfig()
            acts = ppo.deterministic_actors()
            mlp = copy.deepcopy(acts.mlp)
            calibrate_offsets(mlp, [af], 2 * cfg.calibration_episodes, seed=SEED + 1, iterations=1,
                              output=acts.output)
            # as the revision's write_teachers: run format 8 trims each gain again, 9 may screen the gains
            new = {} if not hasattr(cfg, "gain_retrim") else {"retrim": 2 * cfg.calibration_episodes * cfg.gain_retrim}
            if hasattr(cfg, "gain_screen_episodes"):
                new.update(screen=cfg.gain_screen_episodes, tolerance=cfg.gain_tolerance)
            calibrate_gain(mlp, [af], cfg.feedback_gains, cfg.gain_episodes, seed=SEED + 5, output=acts.output, **new)
            judged = TeacherActors(mlp, acts.output)
        else:  # the selection's trim (16 episodes), no gain calibration
            judged = trimmed_copy(ppo.deterministic_actors(), [af], 16, seed=SEED + 11)
        m = evaluate_teachers(judged, [af], BAR.episodes, seed=SEED)[0]
        if BAR.judge(m, ref)["passed"]:
            out = {"reached": True, "success": m["success_rate"], "terminated": m["termination_rate"]}
            break
out.update(train_s=round(train_s, 1), env_steps=ppo.env_steps, first_iteration_s=round(first, 1))
print("RESULT " + json.dumps(out))
"""


def install(rev: str | None, where: Path) -> dict:
    """An environment whose `raptor` is the revision's (or this checkout's) code: PYTHONPATH to an installed copy."""
    src = REPO
    if rev is not None:
        src = where / "src"
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "-q", "--detach", str(src), rev], check=True)
    site = where / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target",
                    str(site), str(src)], check=True, capture_output=True)
    commit = subprocess.run(["git", "-C", str(src), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    return {**os.environ, "PYTHONPATH": str(site), "RAPTOR_GIT_COMMIT": commit, "_bin": str(site / "bin" / "raptor"),
            "_commit": commit}


def crazyflie(env: dict, seed: int, budget: float, every: float, compile_: bool, check: str = "selection") -> dict:
    r = subprocess.run([sys.executable, "-c", CRAZYFLIE, str(seed), str(budget), str(every), "1" if compile_ else "0",
                        check],
                       env={k: v for k, v in env.items() if not k.startswith("_")}, capture_output=True, text=True)
    line = [ln for ln in r.stdout.splitlines() if ln.startswith("RESULT ")]
    if not line:
        raise SystemExit(f"crazyflie run failed:\n{r.stderr[-2000:]}")
    return json.loads(line[0][7:])


def aggregate(env: dict, out: Path, ids: str, k: int, steps: int, extra: list[str]) -> dict:
    cmd = [env["_bin"], "train", "--airframes", "sampled:1000:0", "--ids", ids, "--teachers-per-shard", str(k),
           "--steps", str(steps), "--any-yaw", "0.25", "--threads", "2", "--out", str(out), "--no-progress", *extra]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, env={k_: v for k_, v in env.items() if not k_.startswith("_")}, capture_output=True,
                       text=True)
    wall = time.perf_counter() - t0
    if r.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{r.stderr[-2000:]}")
    rows = []
    for d in sorted((out / "teachers").iterdir()):
        ev = json.loads((d / "eval.json").read_text())
        row = {n: ev[n] for n in ("id", "passed", "success_rate", "termination_rate", "mean_action_change",
                                  "reference_termination_rate", "steps")}
        if (d / "curve.json").exists():  # the selection evaluations, kept for replaying stop rules on fresh curves
            row["curve"] = [[c["steps"], round(c["success_rate"], 3), round(c["termination_rate"], 3)]
                            for c in json.loads((d / "curve.json").read_text())]
        rows.append(row)
    passed = [r_ for r_ in rows if r_["passed"]]
    mean = lambda key, rs: round(statistics.fmean(r_[key] for r_ in rs), 4) if rs else None  # noqa: E731
    return {"command": " ".join(cmd[1:]), "wall_s": round(wall, 1), "teachers": len(rows), "at_bar": len(passed),
            "teachers_to_bar_per_hour": round(len(passed) * 3600 / wall, 1),
            "mean_steps_trained": round(statistics.fmean(r_["steps"] for r_ in rows)),
            "all": {key: mean(key, rows) for key in ("success_rate", "termination_rate", "mean_action_change")},
            "at_bar_quality": {key: mean(key, passed) for key in ("success_rate", "termination_rate",
                                                                  "mean_action_change")},
            "rows": rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--baseline-rev", required=True, help="the git revision of today's trainer, e.g. cf43f09")
    ap.add_argument("--ids", default="500-563")
    ap.add_argument("--k", type=int, default=64)
    ap.add_argument("--steps", type=int, default=3_000_000)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--budget", type=float, default=60.0, help="training seconds per crazyflie seed")
    ap.add_argument("--check-every", type=float, default=5.0)
    ap.add_argument("--new-options", default="--compile --finish-early")
    ap.add_argument("--skip-crazyflie", action="store_true")
    ap.add_argument("--skip-aggregate", action="store_true")
    ap.add_argument("--check", choices=("selection", "finalize"), default="selection",
                    help="how the crazyflie's snapshot is judged every --check-every s: 'selection' trims it (16 "
                         "episodes) and judges it; 'finalize' does what the trainer's finalization does (trim on 32 "
                         "episodes, the feedback-gain calibration, the 500-episode judge)")
    ap.add_argument("--out", default="runs/speedup")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="raptor-speedup-"))
    report: dict = {"baseline_rev": args.baseline_rev, "ids": args.ids, "k": args.k, "steps": args.steps,
                    "new_options": args.new_options, "check": args.check, "date": time.strftime("%Y-%m-%dT%H:%M:%S")}
    try:
        base, new = install(args.baseline_rev, tmp / "base"), install(None, tmp / "new")
        report["commits"] = {"baseline": base["_commit"], "new": new["_commit"]}
        if not args.skip_crazyflie:
            cf: dict = {"baseline": [], "new": []}
            for seed in range(args.seeds):
                for name, env, comp in (("baseline", base, False), ("new", new, "--compile" in args.new_options)):
                    r = crazyflie(env, seed, args.budget, args.check_every, comp, args.check)
                    cf[name].append(r)
                    print(f"crazyflie seed {seed} {name}: {r}", flush=True)
            for name in ("baseline", "new"):
                times = [r["train_s"] if r["reached"] else float("inf") for r in cf[name]]
                cf[name + "_median_s"] = statistics.median(times)
            report["crazyflie"] = cf
            (out / "speedup.json").write_text(json.dumps(report, indent=1))
        for name, env, extra in (() if args.skip_aggregate else
                                 (("baseline", base, []), ("new", new, args.new_options.split()))):
            shutil.rmtree(out / name, ignore_errors=True)
            report[name] = aggregate(env, out / name, args.ids, args.k, args.steps, extra)
            r = report[name]
            print(f"{name}: {r['at_bar']}/{r['teachers']} at the bar in {r['wall_s']:.0f} s -> "
                  f"{r['teachers_to_bar_per_hour']} teachers-to-bar per hour; quality {r['all']}", flush=True)
            (out / "speedup.json").write_text(json.dumps(report, indent=1))
        if args.skip_aggregate:
            return
        report["ratio"] = round(report["new"]["teachers_to_bar_per_hour"]
                                / max(report["baseline"]["teachers_to_bar_per_hour"], 1e-9), 2)
        print(f"ratio (teachers-to-bar per hour, new / baseline): {report['ratio']}", flush=True)
        (out / "speedup.json").write_text(json.dumps(report, indent=1))
    finally:
        subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(tmp / "base" / "src")],
                       capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
