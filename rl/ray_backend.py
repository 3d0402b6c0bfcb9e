"""The ray backend: shards of airframes on the workers of a Ray cluster, each running the batched trainer.

    raptor train --backend ray --address auto --airframes sampled:1000:0 --out /shared/teachers

Every shard is one Ray task (one CPU, or one GPU with --device cuda). Workers that see the output directory
(a shared filesystem, or a local cluster) write their teachers and checkpoints there directly, so a killed
driver or worker resumes like the batched backend. Workers that do not see it train in a scratch directory and
send the finished teacher files back to the driver, which writes them into the same layout.
"""

from __future__ import annotations

import base64
import os
import tempfile
from pathlib import Path

from raptor.errors import ConfigError
from raptor.fileio import atomic_write_bytes, atomic_write_text
from raptor.rl.config import TrainConfig
from raptor.rl.run import RunDir
from raptor.rl.shard import train_shard_batched


def _train_task(out: str, run: dict, airframes_json: str, cfg_json: dict, key: str, ids: list[int],
                seed: int) -> dict:
    """Runs on a worker: train one shard; return its evaluations and, without shared storage, its files."""
    import torch


    cfg = TrainConfig.from_json(cfg_json)
    torch.set_num_threads(max(cfg.threads, 1))
    rd = RunDir(out)
    shared = rd.run_file.is_file()
    scratch = None
    if not shared:
        scratch = tempfile.mkdtemp(prefix="raptor-train-")
        rd = RunDir(scratch)
        rd.write_run(run)
        rd.airframes_file.write_text(airframes_json)
    results = train_shard_batched(rd, cfg, key, ids, seed, rd.airframes(), progress=False)
    files = {}
    if scratch is not None:
        for i in ids:
            d = rd.teacher_dir(i)
            for f in d.glob("*") if d.is_dir() else []:
                files[str(f.relative_to(rd.root))] = base64.b64encode(f.read_bytes()).decode()
    return {"results": results, "files": files, "host": os.uname().nodename}


def train_ray(rd, cfg, plan: list[tuple[str, list[int], int]], address: str | None = None,
              progress: bool = True, num_cpus: int | None = None) -> list[dict]:
    try:
        import ray
    except ImportError:
        raise ConfigError("the ray backend needs ray: pip install raptor-quadrotor[ray]") from None

    started_here = False
    if not ray.is_initialized():
        if address in (None, "", "local"):
            ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False,
                     runtime_env={"env_vars": {"OMP_NUM_THREADS": "1"}})
        else:
            ray.init(address=address, log_to_driver=False)
        started_here = True
    try:
        run = rd.read_run()
        airframes_json = rd.airframes_file.read_text()
        resources = {"num_gpus": 1} if cfg.device.startswith("cuda") else {"num_cpus": 1}
        task = ray.remote(**resources)(_train_task)
        out = str(Path(rd.root).resolve())
        pending = {task.remote(out, run, airframes_json, cfg.to_json(), key, ids, seed): ids
                   for key, ids, seed in plan}
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=len(pending), unit="shard", desc="ray shards")
        results: list[dict] = []
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                pending.pop(ref)
                r = ray.get(ref)
                for rel, data in r["files"].items():  # workers without the shared directory
                    path = rd.root / rel
                    path.parent.mkdir(parents=True, exist_ok=True)
                    if path.name == "eval.json":
                        continue
                    atomic_write_bytes(path, base64.b64decode(data))
                for rel, data in r["files"].items():  # eval.json last: it marks a teacher finished
                    if rel.endswith("eval.json"):
                        atomic_write_text(rd.root / rel, base64.b64decode(data).decode())
                results += r["results"]
                if bar is not None:
                    bar.update(1)
        if bar is not None:
            bar.close()
        return results
    finally:
        if started_here:
            ray.shutdown()
