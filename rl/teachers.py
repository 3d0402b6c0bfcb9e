"""The hand-off of raptor.rl to the stages after it: a training run's finished teachers as one batched labeller
(`TeacherSet`). Distillation reads teachers only through it: the run folder's layout, status strings and network
classes stay rl's own."""

from __future__ import annotations

import os

import torch

from raptor.errors import ConfigError
from raptor.fileio import read_json
from raptor.rl.batched import BatchedMLP
from raptor.rl.config import parse_ids
from raptor.rl.ppo import TeacherActors
from raptor.rl.run import RunDir, status
from raptor.rl.teacher import load_teacher
from raptor.sim.airframe import Airframe


class TeacherSet:
    """The finished teachers of a `raptor train` run (those at the bar, unless only_passed=False; `ids` a subset),
    stacked into one batched actor with each teacher's own output head: (K, N, 29) -> (K, N, 4); teachers trained on
    the reference observation read its first 26 values. `ids[k]` and `airframes[k]` are teacher k's; with `repeat`,
    those teachers appear a second time at the end (their airframes then fly twice the episodes)."""

    def __init__(self, teachers_dir: str | os.PathLike, only_passed: bool = True,
                 max_termination: float = 1.0, ids: str | None = None, repeat: str | None = None) -> None:
        rd = RunDir(teachers_dir)
        rows = status(rd)
        damaged = [f"{r['id']} ({r['state']})" for r in rows if r["state"].startswith("damaged")]
        if damaged:
            raise ConfigError(f"teachers {', '.join(damaged)} in '{teachers_dir}' are damaged; retrain them "
                              "(delete their folders, then raptor train --out DIR --resume) or leave them out with "
                              "--ids")
        n_run = 1 + max((r["id"] for r in rows), default=-1)
        if ids is not None:
            wanted = set(parse_ids(ids, n_run))
            rows = [r for r in rows if r["id"] in wanted]
        rows = [r for r in rows if r["state"] == "finished" and (r["passed"] or not only_passed)
                and r["termination_rate"] <= max_termination]
        if not rows:
            raise ConfigError(f"no {'passing ' if only_passed else ''}finished teachers in '{teachers_dir}'"
                              f"{'' if ids is None else f' among --ids {ids}'}; train them with raptor train "
                              "(or pass --include-failed)")
        if repeat is not None:  # these teachers listed twice: their airframes fly twice the episodes
            try:
                twice = set(parse_ids(repeat, n_run))
            except ConfigError as e:
                raise ConfigError(f"--repeat-ids {repeat}: {e}") from None
            extra = [r for r in rows if r["id"] in twice]
            if not extra:
                raise ConfigError(f"--repeat-ids {repeat} names none of the {len(rows)} teachers being distilled "
                                  f"(ids {rows[0]['id']}-{rows[-1]['id']}); name some of them or leave it out")
            rows = rows + extra
        self.ids = [r["id"] for r in rows]
        loaded = {}  # id -> (actor, meta, airframe): a repeated teacher is read once
        for i in dict.fromkeys(self.ids):
            d = rd.teacher_dir(i)
            a, meta = load_teacher(d / "teacher.safetensors")
            af = read_json(d / "airframe.json", "teacher airframe", "retrain that teacher")
            loaded[i] = (a, meta, Airframe(af["name"], af["parameters"], af.get("meta", {})))
        actors, metas, self.airframes = (list(x) for x in zip(*(loaded[i] for i in self.ids)))
        sizes = {tuple(m["sizes"]) for m in metas}
        if len(sizes) != 1:
            raise ConfigError(f"teachers have different network sizes {sorted(sizes)}; distill them separately")
        self.K = len(self.ids)
        mlp = BatchedMLP(self.K, next(iter(sizes)))
        for k, a in enumerate(actors):
            mlp.load_teacher_state(k, a.mlp.teacher_state(0))
        self.actors = TeacherActors(mlp, [a.output for a in actors])

    def to(self, device: str) -> TeacherSet:
        self.actors = self.actors.to(device)
        return self

    @torch.no_grad()
    def __call__(self, obs: torch.Tensor) -> torch.Tensor:
        """obs (K, N, >= the teachers' input size) -> deterministic actions (K, N, 4) in [-1, 1]."""
        return self.actors(obs)
