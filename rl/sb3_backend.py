"""The stable-baselines3 reference trainers: SAC with the spec 5.1 settings and PPO, one airframe per run.

Both run on our simulator through `Sb3VecEnv`, a stable-baselines3 VecEnv over BatchedQuadrotorEnv (the
teacher observation, the RAPTOR reward, hover and Langevin targets, same-step autoreset with the terminal
observation in `infos`). Their actors are converted to the batched trainer's teacher files, so evaluation,
status and distillation treat every backend alike.
"""

from __future__ import annotations

import math
import os
import shutil
import time
from dataclasses import replace

import numpy as np
import torch

from raptor.conventions import PRIVILEGED_OBS_DIM
from raptor.errors import ConfigError
from raptor.rl.batched import BatchedMLP
from raptor.rl.config import teacher_airframe, training_env_config
from raptor.rl.ppo import ACT_DIM, OBS_DIM, TeacherActors
from raptor.rl.shard import write_teachers
from raptor.rl.teacher import evaluate_teachers, teacher_score
from raptor.sim.airframe import Airframe
from raptor.sim.config import EnvConfig
from raptor.sim.env import BatchedQuadrotorEnv

try:
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.vec_env import VecEnv
except ImportError:  # the sb3 backend is optional: pip install raptor-quadrotor[rl]
    VecEnv, BaseCallback = object, object


class Sb3VecEnv(VecEnv):
    """n envs of one airframe as a stable-baselines3 VecEnv (numpy float32 in and out)."""

    def __init__(self, airframe: Airframe, n_envs: int, config: EnvConfig, seed: int = 0) -> None:
        from gymnasium import spaces

        self.core = BatchedQuadrotorEnv([airframe], n_envs, config, seed=seed)
        obs_space = spaces.Box(-np.inf, np.inf, (self.core.obs_dim,), np.float32)
        act_space = spaces.Box(-1.0, 1.0, (ACT_DIM,), np.float32)
        super().__init__(n_envs, obs_space, act_space)
        self._actions = None

    def reset(self):
        return self.core.reset().float().numpy()

    def step_async(self, actions) -> None:
        self._actions = torch.as_tensor(np.asarray(actions), dtype=self.core.state.dtype)

    def step_wait(self):
        obs, rew, term, trunc, info = self.core.step(self._actions.clamp(-1, 1))
        done = (term | trunc).numpy()
        infos: list[dict] = [{} for _ in range(self.num_envs)]
        if "final_observation" in info:
            final = info["final_observation"].float().numpy()
            for i in np.flatnonzero(done):
                infos[i] = {"terminal_observation": final[i], "TimeLimit.truncated": bool(trunc[i])}
        return obs.float().numpy(), rew.float().numpy(), done, infos

    def close(self) -> None:
        pass

    def get_attr(self, attr_name, indices=None):
        return [getattr(self, attr_name)] * self.num_envs

    def set_attr(self, attr_name, value, indices=None) -> None:
        setattr(self, attr_name, value)

    def env_method(self, method_name, *args, indices=None, **kwargs):
        return [getattr(self, method_name)(*args, **kwargs)] * self.num_envs

    def env_is_wrapped(self, wrapper_class, indices=None):
        return [False] * self.num_envs

    def seed(self, seed=None):
        if seed is not None:
            self.core.seed(seed)
        return [seed] * self.num_envs


def sb3_model(algo: str, env: Sb3VecEnv, seed: int, device: str):
    """SAC with the reference's settings (spec 5.1), or PPO with 64 envs; ReLU MLPs so the actor converts."""
    try:
        from stable_baselines3 import PPO, SAC
    except ImportError:
        raise ConfigError("the sb3 backend needs stable-baselines3: pip install raptor-quadrotor[rl]") from None
    if algo == "sac":
        return SAC("MlpPolicy", env, learning_rate=3e-4, buffer_size=1_000_000, learning_starts=10_000,
                   batch_size=128, tau=0.005, gamma=0.99, train_freq=1, gradient_steps=1, ent_coef="auto_0.5",
                   target_entropy=-2.0, seed=seed, device=device, verbose=0,
                   policy_kwargs={"net_arch": {"pi": [64, 64], "qf": [256, 256]}, "activation_fn": torch.nn.ReLU})
    return PPO("MlpPolicy", env, n_steps=256, batch_size=4096, n_epochs=5, learning_rate=3e-4, gamma=0.99,
               gae_lambda=0.95, clip_range=0.2, ent_coef=0.0, seed=seed, device=device, verbose=0,
               policy_kwargs={"net_arch": {"pi": [64, 64], "vf": [256, 256]}, "activation_fn": torch.nn.ReLU})


def actor_from_sb3(model, algo: str) -> tuple[TeacherActors, BatchedMLP]:
    """The deterministic actor of a stable-baselines3 model: SAC tanh(mu(obs)); PPO clip(mean(obs), -1, 1)."""
    if algo == "sac":
        layers = [m for m in model.actor.latent_pi if isinstance(m, torch.nn.Linear)] + [model.actor.mu]
    else:
        net = model.policy.mlp_extractor.policy_net
        layers = [m for m in net if isinstance(m, torch.nn.Linear)] + [model.policy.action_net]
    sizes = [layers[0].in_features] + [m.out_features for m in layers]
    if sizes[0] not in (OBS_DIM, PRIVILEGED_OBS_DIM) or sizes[-1] != ACT_DIM:
        raise ConfigError(f"unexpected sb3 actor layout {sizes}")
    mlp = BatchedMLP(1, sizes)
    with torch.no_grad():
        for i, m in enumerate(layers):
            mlp.weights[i].copy_(m.weight.detach().cpu().t()[None])
            mlp.biases[i].copy_(m.bias.detach().cpu()[None, None])
    return TeacherActors(mlp, output="tanh" if algo == "sac" else "clip"), mlp


class _Progress(BaseCallback):
    """Selection evaluations, atomic checkpoints (model + replay buffer) and a progress bar."""

    def __init__(self, owner: _Sb3Shard) -> None:
        super().__init__()
        self.owner = owner

    def _on_step(self) -> bool:
        return self.owner.on_step()


class _Sb3Shard:
    def __init__(self, rd, cfg, key: str, i: int, seed: int, airframe: Airframe, progress: bool) -> None:

        self.rd, self.cfg, self.key, self.i, self.seed = rd, cfg, key, i, seed
        self.af = teacher_airframe(airframe, cfg)
        self.dir = rd.checkpoints / key
        self.progress = progress
        self.best = {"score": -math.inf, "steps": 0, "actor": None}
        self.curve: list[dict] = []
        self.elapsed = 0.0
        self.next_eval = cfg.eval_every_steps
        self.bar = None

    def on_step(self) -> bool:
        t = self.model.num_timesteps
        if self.bar is not None:
            self.bar.n = t
            if t % 1000 == 0:
                self.bar.refresh()
        if t >= self.next_eval:
            self.next_eval += self.cfg.eval_every_steps
            self.evaluate()
        if time.monotonic() - self.last_ckpt > self.cfg.checkpoint_every_s:
            self.checkpoint()
        return True

    def evaluate(self) -> None:
        actors, mlp = actor_from_sb3(self.model, self.cfg.algo)
        m = evaluate_teachers(actors, [self.af], self.cfg.eval_episodes, seed=self.seed + 7)[0]
        now = self.elapsed + time.perf_counter() - self.t_start
        self.curve.append({"steps": int(self.model.num_timesteps), "wall_s": round(now, 2),
                           **{n: m[n] for n in ("success_rate", "termination_rate", "mean_return",
                                                "mean_action_change", "final_position_error_mean")}})
        score = teacher_score(m)
        if score > self.best["score"]:
            self.best = {"score": score, "steps": int(self.model.num_timesteps), "actor": mlp.teacher_state(0)}

    def checkpoint(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.dir.with_name(f".{self.dir.name}.{os.getpid()}.tmp")
        tmp.mkdir(parents=True, exist_ok=True)
        self.model.save(tmp / "model.zip")
        if hasattr(self.model, "replay_buffer"):
            self.model.save_replay_buffer(tmp / "replay.pkl")
        now = self.elapsed + time.perf_counter() - self.t_start
        torch.save({"best": self.best, "curve": self.curve, "elapsed_s": now, "next_eval": self.next_eval,
                    "env_steps": int(self.model.num_timesteps), "ids": [self.i]}, tmp / "state.pt")
        # swap directories: the old checkpoint stays valid until the new one is complete
        old = self.dir.with_name(f".{self.dir.name}.old")
        if self.dir.exists():
            os.replace(self.dir, old)
        os.replace(tmp, self.dir)
        if old.exists():
            shutil.rmtree(old, ignore_errors=True)
        self.last_ckpt = time.monotonic()

    def run(self) -> list[dict]:

        cfg = self.cfg
        n_envs = 1 if cfg.algo == "sac" else 64
        # the batched trainer's starts, with the spec's 500-step episodes on the CPU (the reference trainer)
        env_cfg = replace(training_env_config(cfg), device="cpu", episode_steps=EnvConfig().episode_steps)
        env = Sb3VecEnv(self.af, n_envs, env_cfg, seed=self.seed)
        old = self.dir.with_name(f".{self.dir.name}.old")
        if not self.dir.exists() and old.exists():  # killed between the two renames of a checkpoint
            os.replace(old, self.dir)
        if (self.dir / "state.pt").is_file():
            from stable_baselines3 import PPO, SAC

            cls = SAC if cfg.algo == "sac" else PPO
            self.model = cls.load(self.dir / "model.zip", env=env, device=cfg.device)
            if cfg.algo == "sac" and (self.dir / "replay.pkl").is_file():
                self.model.load_replay_buffer(self.dir / "replay.pkl")
            st = torch.load(self.dir / "state.pt", weights_only=False)
            self.best, self.curve, self.elapsed = st["best"], st["curve"], float(st["elapsed_s"])
            self.next_eval = int(st["next_eval"])
        else:
            self.model = sb3_model(cfg.algo, env, self.seed, cfg.device)
        remaining = cfg.steps - self.model.num_timesteps
        self.t_start = time.perf_counter()
        self.last_ckpt = time.monotonic()
        if self.progress:
            from tqdm import tqdm

            self.bar = tqdm(total=cfg.steps, initial=self.model.num_timesteps, unit="step", leave=False,
                            desc=f"teacher {self.i} (sb3 {cfg.algo})")
        if remaining > 0:
            self.model.learn(remaining, callback=_Progress(self), reset_num_timesteps=False)
        if self.bar is not None:
            self.bar.close()
        self.evaluate()
        self.checkpoint()
        elapsed = self.elapsed + time.perf_counter() - self.t_start
        actors, mlp = actor_from_sb3(self.model, cfg.algo)
        mlp.load_teacher_state(0, self.best["actor"])  # the best snapshot, not the last weights
        airframes = self.rd.airframes()
        out = write_teachers(self.rd, cfg, [self.i], actors, mlp, airframes, [self.curve], [self.best["steps"]],
                             elapsed, f"sb3-{cfg.algo}")
        shutil.rmtree(self.dir, ignore_errors=True)
        return out


def train_shard_sb3(rd, cfg, key: str, ids: list[int], seed: int, airframes: list[Airframe],
                    progress: bool = True) -> list[dict]:
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    results = []
    for i in ids:
        if not rd.finished(i):
            results += _Sb3Shard(rd, cfg, key, i, seed, airframes[i], progress).run()
    return results
