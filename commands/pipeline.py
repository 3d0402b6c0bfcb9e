"""`raptor pipeline`: the whole mission in one command, resumable stage by stage.

    raptor pipeline --airframes sampled:1000:0 --out RUN [--device cuda] [--quick] [--resume]

Stages, each in a folder of RUN and each resumed from what is on disk:
1. teachers  RUN/train     `raptor train`: one PPO teacher per airframe, batched, finalized at the quality bar
2. retrain   RUN/train     `raptor train --retrain-failed`: the teachers below the bar, longer, another seed
3. distill   RUN/student   `raptor distill`: BC then DAgger of the teachers into the 2084-parameter student
4. evaluate  RUN/eval      every `raptor eval` scenario on fresh airframes (disjoint from the teachers' and the
                           held-out selection set), the student beside the published policy on the same starts
5. policy    RUN/policy.safetensors and RUN/report.md: the student with its provenance (the one command that
                           reproduces it) and its evaluation

RUN/pipeline.json records the command, the recipe and each stage's state and wall time. `--resume` continues the
first unfinished stage (a finished run returns at once); starting again in a folder that holds a run is refused.
`--quick` is a tiny end-to-end run (minutes on 2 CPU cores) that checks the machine and the code paths; its
student is not meant to fly.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import time
from dataclasses import replace

from raptor.commands.evaluate import evaluate
from raptor.commands.pipeline_run import (
    PIPELINE_DISTILL,
    PIPELINE_FLAGS,
    PIPELINE_FORMAT,
    PIPELINE_TRAIN,
    PIPELINE_VERSION,
    STAGES,
    PipelineConfig,
    PipelineRun,
    _stage_line,
    distill_config,
    full_config,
    quick_config,
    stage_flags,
    train_config,
)
from raptor.commands.pipeline_status import status_lines
from raptor.distill.dagger import DISTILL_FLAGS, DistillConfig, distill
from raptor.errors import ConfigError, RaptorError
from raptor.fileio import atomic_write_text, check_writable_folder, lock_alive, process_lock, read_json
from raptor.options import add_flags, given
from raptor.policy import load
from raptor.policy.io import git_commit, save_policy
from raptor.rl.config import FAST_RECIPE, LAYOUT_FIELDS, TRAIN_FLAGS, TrainConfig, parse_ids
from raptor.rl.run import RunDir, status
from raptor.rl.train import train
from raptor.sim.airframe_files import resolve_airframes
from raptor.sim.scenarios import SCENARIOS as EVAL_SCENARIOS  # every scenario of raptor eval

# ----------------------------------------------------------------------------------------------------------------
# Stages


def _teacher_summary(run: PipelineRun) -> tuple[str, int, int, int]:
    rows = status(RunDir(run.teachers))
    done = [r for r in rows if r["state"] == "finished"]
    passed = sum(1 for r in done if r["passed"])
    missing = {r.get("reference_missing") for r in done if r.get("reference_missing")}
    text = f"{len(done)}/{len(rows)} teachers finished, {passed} at the quality bar"
    if missing:
        text += " (published policy unavailable: judged against the fallback limit)"
    return text, len(rows), len(done), passed


def stage_teachers(run: PipelineRun, pc: PipelineConfig, progress: bool, layout: dict | None = None) -> str:
    resume = (run.teachers / "run.json").is_file()  # a resume passes the spec and ids: airframes added are trained
    train(str(run.teachers), pc.airframes, pc.ids, None if resume else train_config(pc), resume=resume,
          progress=progress, overrides=layout if resume else None)
    text, n, done, _ = _teacher_summary(run)
    if done < n:
        raise ConfigError(f"teacher training stopped with {n - done} teachers unfinished; continue with "
                          f"raptor pipeline --out {run.root} --resume")
    return text


def stage_retrain(run: PipelineRun, pc: PipelineConfig, record: dict, progress: bool,
                  layout: dict | None = None) -> str:
    st = record["stages"].setdefault("retrain", {})
    rounds = st.get("rounds_done", 0)
    if st.get("round_started", 0) > rounds:  # a round was stopped: its teachers wait unfinished in the run
        train(str(run.teachers), resume=True, progress=progress, overrides=layout)
        rounds = st["rounds_done"] = st["round_started"]
        run.write(record)
    steps = int(train_config(pc).steps * pc.retrain_steps_factor)
    while rounds < pc.retrain_rounds:
        failed = [r["id"] for r in status(RunDir(run.teachers)) if r["state"] == "finished" and not r["passed"]]
        if not failed:
            break
        st["round_started"] = rounds + 1
        run.write(record)
        print(f"retrain round {rounds + 1}: {len(failed)} teachers below the bar, {steps:,} steps each")
        train(str(run.teachers), retrain_failed=True, progress=progress, retrain={"steps": steps}, overrides=layout)
        rounds = st["rounds_done"] = rounds + 1
        run.write(record)
    return _teacher_summary(run)[0] + f" after {rounds} retrain round{'s' if rounds != 1 else ''}"


def stage_distill(run: PipelineRun, pc: PipelineConfig, progress: bool) -> str:
    cfg = distill_config(pc)
    rows = status(RunDir(run.teachers))
    usable = [r for r in rows if r["state"] == "finished" and (r["passed"] or not cfg.only_passed)]
    if not usable:
        raise ConfigError(f"no teacher of {run.teachers} reaches the quality bar, so there is nothing to distill: "
                          f"train longer (raptor pipeline --resume after raising the steps in a new run), or see "
                          f"raptor train --status {run.teachers}")
    resume = (run.student / "config.json").is_file()
    last = distill(str(run.teachers), str(run.student), cfg, resume=resume, progress=progress, device=cfg.device)
    best = read_json(run.student / "log.json", "distillation log", "rerun with --resume")
    hold = [e["holdout"]["hover"]["success_rate"] for e in best if "holdout" in e]
    return (f"{len(usable)} teachers, {cfg.epochs} epochs, last loss {last.get('loss', float('nan')):.4f}"
            + (f", best held-out hover success {100 * max(hold):.1f} % ({cfg.holdout})" if hold else ""))


def check_fresh(pc: PipelineConfig, teachers: list) -> list:
    """The fresh evaluation airframes, refused where they share an airframe with the teachers or the held-out
    selection set (compared by dynamics, not by name)."""
    fresh = resolve_airframes(pc.fresh)
    used = list(teachers) + resolve_airframes(distill_config(pc).holdout)
    if {a.dynamics_key for a in fresh} & {a.dynamics_key for a in used}:
        raise ConfigError(f"the fresh evaluation set {pc.fresh} overlaps the teachers' or the held-out airframes; "
                          "choose another seed with --fresh")
    return fresh


def stage_evaluate(run: PipelineRun, pc: PipelineConfig, progress: bool) -> tuple[str, dict]:
    fresh = check_fresh(pc, RunDir(run.teachers).airframes())
    student = str(run.student / "student.safetensors")
    results: dict = {"airframes": pc.fresh, "episodes": pc.fresh_episodes, "seed": pc.eval_seed, "scenarios": {}}
    for scenario in EVAL_SCENARIOS:
        row = {}
        for who, policy in (("student", student), ("published", "official")):
            try:
                m = evaluate(policy, fresh, scenario, pc.fresh_episodes, pc.eval_seed, pc.device,
                             run.eval / scenario / who)
            except (RaptorError, ImportError, OSError) as e:  # the published policy's absence is reported
                if who == "student":
                    raise
                row[who] = {"missing": f"{type(e).__name__}: {e}"}
                continue
            o = m["overall"]
            row[who] = {k: o[k] for k in ("success_rate", "termination_rate", "final_position_error_median",
                                          "rms_tracking_error_mean")}
        results["scenarios"][scenario] = row
    atomic_write_text(run.eval / "summary.json", json.dumps(results, indent=1))
    h = results["scenarios"]["hover"]
    pub = h["published"]
    text = f"hover success {100 * h['student']['success_rate']:.1f} % on {pc.fresh}" + (
        f" (published {100 * pub['success_rate']:.1f} %)" if "success_rate" in pub else " (published: missing)")
    return text, results


def report_markdown(record: dict, results: dict) -> str:
    def pct(x):
        return "-" if x is None else f"{100 * x:.1f} %"

    def m(x):
        return "-" if x is None else f"{x:.3f}"

    lines = ["# raptor pipeline report", "", f"Command: `{record['command']}`", "",
             f"Started {record['created']}, git {record.get('git_commit', '?')}. Stages:", ""]
    for name in STAGES[:-1]:
        st = record["stages"].get(name, {})
        lines.append(f"- {name}: {st.get('summary', '-')} ({st.get('wall_s', 0):.0f} s)")
    lines += ["", f"## The student beside the published policy, same starts: {results['airframes']} (fresh), "
              f"{results['episodes']} episodes each, seed {results['seed']}", "",
              "| scenario | success (published) | terminated (published) | final error median [m] (published) | "
              "RMS error [m] (published) |", "|---|---|---|---|---|"]
    for scenario, row in results["scenarios"].items():
        s, p = row["student"], row["published"]
        lines.append(f"| {scenario} | {pct(s['success_rate'])} ({pct(p.get('success_rate'))}) | "
                     f"{pct(s['termination_rate'])} ({pct(p.get('termination_rate'))}) | "
                     f"{m(s['final_position_error_median'])} ({m(p.get('final_position_error_median'))}) | "
                     f"{m(s['rms_tracking_error_mean'])} ({m(p.get('rms_tracking_error_mean'))}) |")
    missing = {r["published"]["missing"] for r in results["scenarios"].values() if "missing" in r["published"]}
    if missing:
        lines += ["", f"The published policy could not be flown here ({'; '.join(sorted(missing))}): "
                  "pip install 'raptor-quadrotor[official]' and rerun the evaluate stage."]
    return "\n".join(lines) + "\n"


def stage_policy(run: PipelineRun, record: dict, results: dict) -> str:
    pol = load(str(run.student / "student.safetensors"))
    meta = dict(pol.metadata)
    meta["name"] = f"pipeline:{run.root.name}"
    meta["provenance"] = {**meta.get("provenance", {}), "source": "raptor pipeline",
                          "pipeline": [record["command"]], "pipeline_config": record["config"]}
    meta["evaluation"] = results
    save_policy(run.policy, pol.net, meta)
    atomic_write_text(run.report, report_markdown(record, results))
    return f"{run.policy} and {run.report}"


def add_teacher_airframes(run: PipelineRun, record: dict, spec: str, ids: str | None) -> dict:
    """`--resume --add-airframes SPEC [--add-ids IDS]`: teachers for more airframes, before the retrain stage. The
    run's spec becomes SPEC appended to it (no id moves, so nothing trained is touched), the ids IDS of SPEC (default
    all) join the run, trained with its stored recipe; pipeline.json records it under "amendments"."""
    if record["stages"].get("retrain", {}).get("state") is not None:
        raise ConfigError(f"'{run.root}' has started its retrain stage; teachers can be added only before it")
    rd = RunDir(run.teachers)
    if rd.run_file.is_file():
        open_ = [r["id"] for r in status(rd) if r["state"] != "finished"]
        if open_:
            raise ConfigError(f"{len(open_)} teachers of '{run.root}' are unfinished; finish them first (raptor "
                              f"pipeline --out {run.root} --resume --until teachers), then add airframes")
    cfg = record["config"]
    extra = resolve_airframes(spec)  # a bad spec fails here, before anything is written
    base = len(resolve_airframes(cfg["airframes"]))
    new_ids = [base + i for i in parse_ids(ids, len(extra))]
    if not new_ids:
        raise ConfigError(f"--add-ids '{ids}' selects none of the {len(extra)} airframes of '{spec}'")
    cfg["airframes"] = f"{cfg['airframes']}+{spec}"
    cfg["ids"] = f"{cfg.get('ids') or _ranges(list(range(base)))},{_ranges(new_ids)}"
    check_fresh(run.config(record), extra)
    st = record["stages"].setdefault("teachers", {})
    if st.get("state") == "done":
        st["state"] = "running"
    record.setdefault("amendments", []).append({
        "date": time.strftime("%Y-%m-%d"), "stage": "teachers",
        "added": {"airframes": spec, "ids": _ranges(new_ids), "run_ids": f"{new_ids[0]}-{new_ids[-1]}"},
        "why": f"raptor pipeline --resume --add-airframes {spec}" + (f" --add-ids {ids}" if ids else "")})
    run.write(record)
    print(f"raptor pipeline: {len(new_ids)} teacher airframes added ({spec}, run ids {_ranges(new_ids)}); the run's "
          f"airframes are now {cfg['airframes']}", flush=True)
    return record


def _ranges(ids: list[int]) -> str:
    """[1, 2, 3, 7] -> '1-3,7' (what --ids reads)."""
    out, start = [], None
    for a, b in zip(ids, ids[1:] + [None]):
        start = a if start is None else start
        if b != a + 1:
            out.append(f"{start}-{a}" if a != start else f"{a}")
            start = None
    return ",".join(out)


# ----------------------------------------------------------------------------------------------------------------
# Entry point


def pipeline(out: str, pc: PipelineConfig | None = None, resume: bool = False, progress: bool = True,
             command: str | None = None, until: str | None = None, layout: dict | None = None,
             add_airframes: str | None = None, add_ids: str | None = None) -> dict:
    """Run (or resume) every stage (up to and including `until`); returns the pipeline record. layout: TrainConfig
    fields of a resume that change how the teachers train, not what they learn (raptor.rl.config.LAYOUT_FIELDS:
    shard size, time limit, compile), applied to the run's teacher stages and recorded there. add_airframes (a
    resume): more teacher airframes, add_teacher_airframes."""
    run = PipelineRun(out)
    if run.exists():
        if not resume:
            raise ConfigError(f"'{out}' already holds a pipeline run; continue it with --resume, or choose another "
                              "--out")
        record = run.read()
        if add_airframes is not None:
            record = add_teacher_airframes(run, record, add_airframes, add_ids)
        pc = run.config(record)
        if layout and layout.get("device") not in (None, pc.device):  # this resume's stages run there
            print(f"raptor pipeline: this resume runs on {layout['device']} (the run started on {pc.device}; the "
                  "recipe is unchanged)", flush=True)
            pc = replace(pc, device=layout["device"])
    else:
        if resume:
            raise ConfigError(f"nothing to resume: '{out}' holds no pipeline.json; start it with --airframes SPEC "
                              f"--out {out}")
        if pc is None:
            raise ConfigError("--airframes is required to start a pipeline run")
        if (run.teachers / "run.json").exists() or (run.student / "config.json").exists():
            raise ConfigError(f"'{out}' holds stage folders but no pipeline.json; choose another --out")
        train_config(pc).check_machine()
        distill_config(pc)  # its settings are checked before anything runs
        teachers = resolve_airframes(pc.airframes)
        check_fresh(pc, [teachers[i] for i in parse_ids(pc.ids, len(teachers))])
        check_writable_folder(run.root)
        record = {"format": PIPELINE_FORMAT, "version": PIPELINE_VERSION,
                  "command": command or f"raptor pipeline --airframes {pc.airframes} --out {out}",
                  "config": dataclasses.asdict(pc), "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
                  "git_commit": git_commit(), "stages": {}}
        run.write(record)
    if all(record["stages"].get(s, {}).get("state") == "done" for s in STAGES):
        print("\n".join(status_lines(run)))  # stage lines in every mode; --no-progress drops progress bars only
        print(f"nothing to do: the run is finished ({run.policy}, {run.report})")
        return record
    if lock_alive(run.lock_file):
        raise ConfigError(f"another raptor process runs '{out}' now ({run.lock_file}); wait for it, or stop it first")
    with process_lock(run.lock_file):
        return _run_stages(run, record, pc, progress, out, until, layout)


def _run_stages(run: PipelineRun, record: dict, pc: PipelineConfig, progress: bool, out: str, until: str | None,
                layout: dict | None) -> dict:
    results = None
    if (run.eval / "summary.json").is_file():
        results = read_json(run.eval / "summary.json", "evaluation summary", "rerun with --resume")
    for i, name in enumerate(STAGES, 1):
        st = record["stages"].setdefault(name, {})
        if st.get("state") == "done":
            print(_stage_line(i, name, "done", st.get("summary", "")), flush=True)
            if name == until:
                break
            continue
        st["state"] = "running"
        run.write(record)
        t0 = time.perf_counter()
        print(_stage_line(i, name, "running"), flush=True)
        if name == "teachers":
            summary = stage_teachers(run, pc, progress, layout)
        elif name == "retrain":
            summary = stage_retrain(run, pc, record, progress, layout)
        elif name == "distill":
            summary = stage_distill(run, pc, progress)
        elif name == "evaluate":
            summary, results = stage_evaluate(run, pc, progress)
        else:
            summary = stage_policy(run, record, results)
        st = record["stages"][name]
        st.update(state="done", summary=summary, wall_s=round(st.get("wall_s", 0) + time.perf_counter() - t0, 1))
        run.write(record)
        print(_stage_line(i, name, "done", f"{summary} ({st['wall_s']:.0f} s)"), flush=True)
        if name == until and i < len(STAGES):
            print(f"stopped after {name} (--until); continue with raptor pipeline --out {out} --resume", flush=True)
            break
    return record


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pipeline", help="sample, train teachers, retrain, distill, evaluate: the whole mission",
                       description=__doc__.split("\n\n")[0])
    full = full_config()
    add_flags(p, PipelineConfig, PIPELINE_FLAGS)
    p.add_argument("--out", default=None, help="the run folder (teachers/, student/, eval/, policy, report)")
    p.add_argument("--quick", action="store_true", help="a tiny end-to-end run (minutes on a CPU) to check a "
                                                        "machine; its student is not meant to fly")
    p.add_argument("--resume", action="store_true", help="continue the run in --out (a finished run returns at once)")
    p.add_argument("--add-airframes", metavar="SPEC", default=None,
                   help="with --resume, before the retrain stage: teachers for these airframes too (appended to the "
                        "run's spec, recorded in pipeline.json), e.g. sampled:64:3:race-fast")
    p.add_argument("--add-ids", metavar="IDS", default=None, help="which of --add-airframes (default all)")
    p.add_argument("--status", metavar="DIR", default=None, help="one line per stage of a run, and exit")
    add_flags(p, TrainConfig, stage_flags(TRAIN_FLAGS, PIPELINE_TRAIN, full.train))
    add_flags(p, DistillConfig, stage_flags(DISTILL_FLAGS, PIPELINE_DISTILL, full.distill))
    p.add_argument("--fast", action="store_true", help="teachers with raptor train's --fast recipe (3x the teachers "
                                                        "at the bar per CPU-hour, docs/benchmarks.md)")
    p.add_argument("--until", default=None, choices=STAGES,
                   help="stop after this stage (--resume continues): splits the run over several sessions or calls")
    p.add_argument("--no-progress", action="store_true", help="no progress bars (logs and batch jobs)")
    p.set_defaults(func=_cmd_pipeline)


def _command(args: argparse.Namespace) -> str:
    """The command line that starts this run again (what the policy's provenance records)."""
    words = ["raptor", "pipeline"]
    for flag in ("airframes", "ids", "out", "device", *(fl.dest for fl in stage_flags(TRAIN_FLAGS, PIPELINE_TRAIN)),
                 *(fl.dest for fl in stage_flags(DISTILL_FLAGS, PIPELINE_DISTILL)), "retrain_rounds", "fresh", "seed"):
        v = getattr(args, flag)
        if v is True:  # a switch
            words.append(f"--{flag.replace('_', '-')}")
        elif v is not None:
            words += [f"--{flag.replace('_', '-')}", str(v)]
    if args.quick:
        words.append("--quick")
    if args.fast:
        words.append("--fast")
    return " ".join(shlex.quote(w) for w in words)


def _cmd_pipeline(args: argparse.Namespace) -> int:
    if args.status:
        print("\n".join(status_lines(PipelineRun(args.status))))
        return 0
    if not args.out:
        raise ConfigError("--out DIR is required (or --status DIR)")
    pc = None
    if not args.resume:
        if args.airframes is None:
            raise ConfigError("--airframes is required to start a run, e.g. --airframes sampled:1000:0")
        top = given(args, PIPELINE_FLAGS)
        pc = quick_config(**top) if args.quick else full_config(**top)
        train_over = {**(FAST_RECIPE if args.fast else {}), **given(args, stage_flags(TRAIN_FLAGS, PIPELINE_TRAIN))}
        distill_over = given(args, stage_flags(DISTILL_FLAGS, PIPELINE_DISTILL))
        if args.init_from is not None:
            distill_over["disturbance_aux_weight"] = 0.0  # as raptor distill --init-from: no fresh head
        pc = replace(pc, train={**pc.train, **train_over}, distill={**pc.distill, **distill_over})
    else:
        recipe = [n for n in ("airframes", "steps", "epochs", "init_from", "batch_size", "ids", "fresh",
                              "retrain_rounds", "seed") if getattr(args, n) is not None]
        recipe += ["quick"] if args.quick else []
        recipe += ["fast"] if args.fast else []
        if recipe:
            raise ConfigError(f"--resume continues the run with its stored recipe, so --{recipe[0].replace('_', '-')} "
                              "cannot change it; drop the options other than --teachers-per-shard, --time-limit, "
                              "--compile, --device, --add-airframes and --until")
    if (args.add_airframes or args.add_ids) and not (args.resume and args.add_airframes):
        raise ConfigError("--add-airframes SPEC [--add-ids IDS] adds teachers to a run: use it with --resume")
    layout = given(args, [fl for fl in stage_flags(TRAIN_FLAGS, PIPELINE_TRAIN) if fl.field in LAYOUT_FIELDS])
    if args.resume and args.device is not None:  # where the stages run, not what they learn: every stage's device
        layout["device"] = args.device
    pipeline(args.out, pc, resume=args.resume, progress=not args.no_progress, command=_command(args),
             until=args.until, layout=layout if args.resume else None, add_airframes=args.add_airframes,
             add_ids=args.add_ids)
    return 0
