"""Simulator throughput: env-steps/s of step + observe + reward + termination.

    python3 benchmarks/sim_throughput.py [--sizes 1,64,1024,4096,16384] [--seconds 1.0] [--out FILE.json]

For each thread setting (1 thread, all threads) a fresh worker process measures, for every batch size N:
  * ours, eager (the reference batched functions),
  * ours, compiled (the fused structure-of-arrays transition under torch.compile),
  * l2f's vector env (step + observe + reward + terminated) in the same process when l2f is installed
    (`pip install l2f==2.0.18`, it compiles for minutes), with the ratio ours / l2f.
On CUDA (when present) the compiled simulator runs at larger N as well.
Every env flies its own airframe from RAPTOR's sampler; actions are fixed hover-ish commands.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time


def _rate(fn, n: int, seconds: float) -> float:
    for _ in range(3):
        fn()
    k, t0 = 0, time.perf_counter()
    while True:
        fn()
        k += 1
        dt = time.perf_counter() - t0
        if dt >= seconds and k >= 5:
            return n * k / dt


def ours(n: int, compiled: bool, device: str, seconds: float) -> float:
    import torch

    from raptor.sim.config import EnvConfig
    from raptor.sim.env import BatchedQuadrotorEnv
    from raptor.sim.sampling import sample_airframes

    n_af = min(n, 1024)
    cfg = EnvConfig(target="hover", check_inputs=False, compile=compiled, device=device)
    env = BatchedQuadrotorEnv(sample_airframes(n_af, 0), n // n_af, cfg, seed=0)
    env.reset()
    a = torch.full((env.num_envs, 4), 0.1, device=env.device)

    def step():
        env.physics_step(a)
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    return _rate(step, env.num_envs, seconds)


def l2f_rate(n: int, seconds: float) -> float | None:
    try:
        import l2f  # noqa: F401  (present: the rate is measured; absent: None)
        import numpy as np
    except ImportError:
        return None
    chunk = min(n, 8192)
    reps = n // chunk
    from raptor.l2f_check import l2f_vector_env

    sims = []
    for r in range(reps):
        vec, dev, *sim = l2f_vector_env(chunk, r)
        sims.append(sim)
    obs = np.zeros((chunk, 82), np.float32)
    act = np.full((chunk, 4), 0.1, np.float32)
    rew = np.zeros(chunk, np.float32)
    term = np.zeros(chunk, bool)

    def step():
        for s in sims:
            rng, env, params, state, nxt = s
            vec.step(dev, env, params, state, act, nxt, rng)
            vec.observe(dev, env, params, nxt, obs, rng)
            vec.reward(dev, env, params, state, act, nxt, rew, rng)
            vec.terminated(dev, env, params, nxt, term, rng)
            s[3], s[4] = nxt, state

    return _rate(step, chunk * reps, seconds)


def worker(threads: int, sizes: list[int], seconds: float, device: str) -> list[dict]:
    import torch

    torch.set_num_threads(threads)
    rows = []
    for n in sizes:
        row = {"device": device, "threads": threads, "n": n}
        if device == "cpu":
            row["eager"] = ours(n, False, device, seconds)
        row["compiled"] = ours(n, True, device, seconds)
        if device == "cpu":
            row["l2f"] = l2f_rate(n, seconds)
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1,64,1024,4096,16384")
    ap.add_argument("--cuda-sizes", default="4096,65536,1048576,4194304,16777216")
    ap.add_argument("--seconds", type=float, default=1.0)
    ap.add_argument("--out", default=None)
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        threads, device, sizes = args.worker.split(":")
        rows = worker(int(threads), [int(s) for s in sizes.split(",")], args.seconds, device)
        print(json.dumps(rows))
        return

    import torch

    jobs = [(1, "cpu", args.sizes), (os.cpu_count() or 1, "cpu", args.sizes)]
    if torch.cuda.is_available():
        jobs.append((1, "cuda", args.cuda_sizes))
    rows = []
    for threads, device, sizes in jobs:
        out = subprocess.run([sys.executable, __file__, "--worker", f"{threads}:{device}:{sizes}", "--seconds",
                              str(args.seconds)], capture_output=True, text=True, check=True)
        rows += json.loads(out.stdout.strip().splitlines()[-1])

    def fmt(x):
        return "-" if x is None else f"{x / 1e6:.3f}M"

    print("| device | threads | N | ours eager | ours compiled | l2f | compiled / l2f |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        ratio = f"{r['compiled'] / r['l2f']:.2f}x" if r.get("l2f") else "-"
        print(f"| {r['device']} | {r['threads']} | {r['n']} | {fmt(r.get('eager'))} | {fmt(r['compiled'])} | "
              f"{fmt(r.get('l2f'))} | {ratio} |")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
