"""Student quality against its teachers and the published policy (issue: `raptor distill` acceptance).

For each student (a `raptor distill` output directory or a policy file) and the published policy, on the same
fresh airframes (another sampler seed than teachers and selection) and the same starts: every `raptor eval`
scenario (hover, yaw, step, recovery, thrown, tracking, disturbance); the student on its own teachers' airframes;
its teachers' success on their own airframes (their `raptor train` evaluations, 500 episodes each); hover success
by motor lag (the slow-motor corner: spin-up >= 0.08 s and spin-down >= 0.25 s).

    python benchmarks/student_quality.py runs/student [runs/student2 ...] [--fresh sampled:200:777] [--episodes 10]
        [--fresh-teachers runs/tf777]

--fresh-teachers: a `raptor train` run on (some of) the fresh airframes themselves, with the same recipe as the
students' teachers: the policies fly those airframes (--fresh-teacher-episodes each) beside the success those
teachers reach there (their 500-episode evaluations, every finished teacher, at the bar or not), the like-for-like
comparison of a student with per-airframe RL on airframes it never saw.

--ship OUT --pipeline FILE: write the (first) student to OUT as the shipped default: metadata name "default", the
commands that made it (FILE: a JSON list of strings) as its provenance pipeline, and the figures measured here as its
evaluation (what `raptor.policy.load("default")` reports). The default ships as
`core/data/policies/default.safetensors`.

--ship OUT --from-run RUN: ship a finished `raptor pipeline` run's policy (RUN/policy.safetensors) as the default,
with the run's own command, recipe and evaluation (its evaluate stage: every scenario on its fresh airframes beside
the published policy) as provenance; nothing is flown here.

    python benchmarks/student_quality.py --ship core/data/policies/default.safetensors --from-run training/every-task
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from raptor import policy as rp
from raptor.metrics import episode_metrics
from raptor.policy.io import save_policy
from raptor.rl.run import RunDir, status
from raptor.sim.airframe import Airframe
from raptor.sim.airframe_files import load_airframes, resolve_airframes
from raptor.sim.scenarios import SCENARIOS, rollout

SLOW_RISE_S, SLOW_FALL_S = 0.08, 0.25


def lag_class(a: Airframe) -> str:
    d = a.parameters["dynamics"]
    up = d["rotor_time_constants_rising"][0] >= SLOW_RISE_S
    down = d["rotor_time_constants_falling"][0] >= SLOW_FALL_S
    return "both slow" if up and down else ("one slow" if up or down else "fast")


def fly(policy_path: str, afs: list[Airframe], scenario: str, episodes: int, seed: int) -> dict:
    r = rollout(rp.load(policy_path), afs, scenario, episodes, seed)
    m = episode_metrics(r)
    classes = np.array([lag_class(afs[i]) for i in r.airframe_index])
    out = {"success": float(m["success"].mean()), "terminated": float(m["terminated"].mean()),
           "final_error_median": float(np.nanmedian(m["final_position_error"])),
           "rms_error": float(np.mean(m["rms_tracking_error"])),
           "by_lag": {c: (float(m["success"][classes == c].mean()), int((classes == c).sum() // episodes))
                      for c in ("fast", "one slow", "both slow") if (classes == c).any()}}
    return out


def teachers_of(student_dir: Path) -> tuple[list[Airframe], dict]:
    cfg = json.loads((student_dir / "config.json").read_text())
    if not (Path(cfg["teachers_dir"]) / "run.json").is_file():
        raise SystemExit(f"{student_dir}: its teachers' run '{cfg['teachers_dir']}' is not here (paths are as given to "
                         "raptor distill; run from the same directory, or pass the student file instead of the folder)")
    rd = RunDir(cfg["teachers_dir"])
    rows = {r["id"]: r for r in status(rd)}
    ids = cfg["teachers"]
    run_airframes = load_airframes(Path(cfg["teachers_dir"]) / "airframes.json")  # the run's, indexed by teacher id
    afs = [run_airframes[i] for i in ids]
    done = [r for r in rows.values() if r["state"] == "finished"]
    summary = {"distilled": len(ids),
               "distilled_success": float(np.mean([rows[i]["success_rate"] for i in ids])),
               "distilled_terminated": float(np.mean([rows[i]["termination_rate"] for i in ids])),
               "run_trained": len(done),
               "run_success": float(np.mean([r["success_rate"] for r in done])),
               "run_passed": sum(bool(r["passed"]) for r in done)}
    return afs, summary


def fresh_teachers(run: str, fresh_spec: str) -> tuple[list[Airframe], dict]:
    """The finished teachers of a run on the fresh airframes: their airframes and mean own evaluation."""
    spec = json.loads((Path(run) / "run.json").read_text())["airframe_spec"]
    if spec != fresh_spec:
        raise SystemExit(f"--fresh-teachers {run} trained on '{spec}', not on --fresh '{fresh_spec}'")
    rows = [r for r in status(RunDir(run)) if r["state"] == "finished"]
    if not rows:
        raise SystemExit(f"--fresh-teachers {run}: no finished teachers yet (raptor train --status {run})")
    run_airframes = load_airframes(Path(run) / "airframes.json")
    return [run_airframes[r["id"]] for r in rows], {
        "trained": len(rows), "passed": sum(bool(r["passed"]) for r in rows),
        "success": float(np.mean([r["success_rate"] for r in rows])),
        "terminated": float(np.mean([r["termination_rate"] for r in rows]))}


def pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("students", nargs="*", help="raptor distill output directories or policy files")
    ap.add_argument("--fresh", default="sampled:200:777")
    ap.add_argument("--episodes", type=int, default=10)
    ap.add_argument("--own-episodes", type=int, default=20)
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--fresh-teachers", default=None, help="a raptor train run on the --fresh airframes")
    ap.add_argument("--fresh-teacher-episodes", type=int, default=50)
    ap.add_argument("--json", default=None, help="also write the figures to this file")
    ap.add_argument("--ship", default=None, metavar="OUT", help="write the first student here as the shipped default")
    ap.add_argument("--pipeline", default=None, metavar="FILE", help="with --ship: JSON list of its commands")
    ap.add_argument("--from-run", default=None, metavar="RUN",
                    help="with --ship: a finished raptor pipeline run; ship its policy with its own evaluation")
    args = ap.parse_args()
    if args.from_run:
        if not args.ship or args.students or args.pipeline:
            raise SystemExit("--from-run RUN goes with --ship OUT alone (the run carries its commands and figures)")
        evaluation = ship_from_run(args.from_run, args.ship)
        print(f"shipped {args.from_run}/policy.safetensors -> {args.ship}:\n{json.dumps(evaluation, indent=1)}")
        return
    if not args.students:
        raise SystemExit("name at least one student (a raptor distill output directory or a policy file)")
    pipeline = read_pipeline(args.pipeline) if args.ship else None  # fail before the hour of rollouts, not after
    fresh = resolve_airframes(args.fresh)
    rows, results, ft_rows = [], {}, []
    ft = fresh_teachers(args.fresh_teachers, args.fresh) if args.fresh_teachers else None
    for name in ["official", *args.students]:
        t0 = time.perf_counter()
        p = Path(name)
        path = policy_path(name)
        res = {s: fly(path, fresh, s, args.episodes, args.seed) for s in SCENARIOS}  # every raptor eval scenario
        if p.is_dir() and (p / "config.json").is_file():
            afs, res["teachers"] = teachers_of(p)
            res["own"] = fly(path, afs, "hover", args.own_episodes, args.seed)
        if ft is not None:
            res["fresh_teachers_airframes"] = f = fly(path, ft[0], "hover", args.fresh_teacher_episodes, args.seed)
            ft_rows.append(f"| {name} | {pct(f['success'])} / {pct(f['terminated'])} | {pct(ft[1]['success'])} / "
                           f"{pct(ft[1]['terminated'])} | {100 * (ft[1]['success'] - f['success']):+.1f} |")
        results[name] = res
        h, r = res["hover"], res["recovery"]
        lag = " / ".join(f"{pct(s)} ({n})" for s, n in h["by_lag"].values())
        own = (f"{pct(res['own']['success'])} / {pct(res['own']['terminated'])}" if "own" in res else "")
        tq = res.get("teachers")
        teach = (f"{tq['distilled']} distilled: {pct(tq['distilled_success'])} / {pct(tq['distilled_terminated'])};"
                 f" all {tq['run_trained']} trained: {pct(tq['run_success'])} ({tq['run_passed']} at the bar)"
                 if tq else "")
        gap = f"{100 * (tq['distilled_success'] - h['success']):+.1f}" if tq else ""
        rows.append(f"| {name} | {pct(h['success'])} / {pct(h['terminated'])} | {pct(r['success'])} / "
                    f"{pct(r['terminated'])} | {h['final_error_median']:.3f} | {lag} | {own} | {teach} | {gap} |")
        print(f"# {name}: {time.perf_counter() - t0:.0f} s", flush=True)
    print(f"\nfresh airframes {args.fresh}, {args.episodes} episodes each, seed {args.seed}; by lag: "
          f"{' / '.join(fresh_counts(fresh))}")
    print("| policy | hover success / terminated | recovery success / terminated | hover final error median [m] | "
          "hover success by motor lag (fast / one slow / both slow) | on its teachers' airframes | "
          "its teachers on their own airframes | teachers minus student [points] |")
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    print("\nevery scenario, same airframes and starts: success / terminated / final error median / RMS error [m]")
    print("| policy | " + " | ".join(SCENARIOS) + " |")
    print("|---|" + "---|" * len(SCENARIOS))
    for name, res in results.items():
        print(f"| {name} | " + " | ".join(f"{pct(res[s]['success'])} / {pct(res[s]['terminated'])} / "
                                          f"{res[s]['final_error_median']:.3f} / {res[s]['rms_error']:.3f}"
                                          for s in SCENARIOS) + " |")
    if ft is not None:
        results["fresh_teachers"] = ft[1]
        print(f"\non the {ft[1]['trained']} fresh airframes with teachers of their own ({args.fresh_teachers}, "
              f"{ft[1]['passed']} at the bar), hover, {args.fresh_teacher_episodes} episodes each:")
        print("| policy | success / terminated | those airframes' own teachers | teachers minus policy [points] |")
        print("|---|---|---|---|")
        print("\n".join(ft_rows))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    if args.ship:
        student = policy_path(args.students[0])
        evaluation = shipped_evaluation(results, args.students[0], args)
        ship(student, args.ship, pipeline, evaluation)
        print(f"\nshipped {student} -> {args.ship}:\n{json.dumps(evaluation, indent=1)}")


def policy_path(name: str) -> str:
    """A `raptor distill` output directory's student file, or the policy file (or name) itself."""
    return str(Path(name) / "student.safetensors") if Path(name).is_dir() else name


def read_pipeline(path: str | None) -> list[str]:
    if path is None:
        raise SystemExit("--ship needs --pipeline FILE: a JSON list of the commands that made the student")
    try:
        pipeline = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise SystemExit(f"--pipeline {path}: cannot read a JSON list from it ({e})") from None
    if not (isinstance(pipeline, list) and pipeline and all(isinstance(c, str) for c in pipeline)):
        raise SystemExit(f"--pipeline {path}: expected a non-empty JSON list of command strings")
    return pipeline


def shipped_evaluation(results: dict, key: str, args: argparse.Namespace) -> dict:
    """The figures a user sees in the default's metadata: the student and the published policy, same airframes."""
    def pick(m: dict) -> dict:
        return {k: round(m[k], 4) for k in ("success", "terminated", "final_error_median")}
    s, o = results[key], results["official"]
    ev = {"airframes": f"{args.fresh} (fresh), {args.episodes} episodes each, seed {args.seed}",
          "hover": pick(s["hover"]), "recovery": pick(s["recovery"]),
          "published_hover": pick(o["hover"]), "published_recovery": pick(o["recovery"])}
    if "teachers" in s:
        ev["teachers_hover_success_rate"] = round(s["teachers"]["distilled_success"], 4)
        ev["teachers_population_hover_success_rate"] = round(s["teachers"]["run_success"], 4)
    if "fresh_teachers" in results:
        n = results["fresh_teachers"]["trained"]
        ev["like_for_like"] = {
            "airframes": f"{args.fresh}: the {n} with teachers of their own, "
                         f"{args.fresh_teacher_episodes} hover episodes each",
            "their_teachers": round(results["fresh_teachers"]["success"], 4),
            "student": round(s["fresh_teachers_airframes"]["success"], 4),
            "published": round(o["fresh_teachers_airframes"]["success"], 4)}
    return ev


def ship(student: str, out: str, pipeline: list[str], evaluation: dict) -> None:
    """Write `student` to `out` (atomically, by save_policy) named "default" with its pipeline and evaluation."""
    write_default(rp.load(student), out, pipeline, evaluation)


def write_default(p: rp.Policy, out: str, pipeline: list[str], evaluation: dict, **provenance: str) -> None:
    """`p` as the shipped default: named "default", its provenance the commands (and any `provenance` items), its
    evaluation the figures given."""
    meta = dict(p.metadata)
    meta["name"] = "default"
    meta["provenance"] = dict(meta.get("provenance", {}), pipeline=pipeline, **provenance)
    teachers_dir = str(meta.get("teachers_dir", ""))
    if Path(teachers_dir).is_absolute():  # a path on the machine that trained it says nothing to a user
        meta["teachers_dir"] = Path(teachers_dir).name
    meta["evaluation"] = evaluation
    save_policy(out, p.net, meta)


def ship_from_run(run: str, out: str) -> dict:
    """Ship a finished `raptor pipeline` run's policy as the default: its name "default", its provenance the run's
    command and recipe (already in the file, from the policy stage) with the run folder named, its evaluation the
    run's evaluate stage. Refused in one line where the run has not finished its policy stage."""
    root = Path(run)
    try:
        record = json.loads((root / "pipeline.json").read_text())
    except (OSError, ValueError) as e:
        raise SystemExit(f"--from-run {run}: not a raptor pipeline run ({e}); give the folder of one") from None
    stage = (record.get("stages") or {}).get("policy", {}) if isinstance(record, dict) else {}
    if stage.get("state") != "done" or not (root / "policy.safetensors").is_file():
        raise SystemExit(f"--from-run {run}: the run's policy stage is not done; finish it first "
                         f"(raptor pipeline --out {run} --resume)")
    p = rp.load(root / "policy.safetensors")
    evaluation = p.metadata.get("evaluation")
    if not isinstance(evaluation, dict) or "scenarios" not in evaluation:
        raise SystemExit(f"--from-run {run}: its policy carries no evaluation; rerun its evaluate stage")
    write_default(p, out, [str(record.get("command", ""))], evaluation, run_folder=root.as_posix())
    return evaluation


def fresh_counts(afs: list[Airframe]) -> list[str]:
    classes = [lag_class(a) for a in afs]
    return [f"{c} {classes.count(c)}" for c in ("fast", "one slow", "both slow")]


if __name__ == "__main__":
    main()
