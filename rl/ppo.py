"""PPO for K teachers at once: each teacher has its own actor, critic, optimizer state and airframe; the
simulator steps every teacher's envs in one batch and the networks run as batched matrix products.

Why PPO with many envs per teacher: our simulator makes env steps nearly free, so the trainer is bounded by
network compute, and PPO spends it on large, parallel batches. Three additions make its teachers good labels:
- every actor starts at its airframe's hover command (output bias atanh(hover action)), so low thrust-to-weight
  airframes do not spend millions of steps learning not to fall;
- a temporal smoothness loss on the deterministic action tanh(mean) between consecutive states (CAPS, Mysore et
  al. 2021), so the deterministic teacher is not bang-bang (mean |a_t - a_{t-1}| well below the 0.05 bar);
- a learned, state-independent exploration std per teacher that the d_action reward term drives down.
The policy is a tanh-squashed Gaussian (deterministic action tanh(mean), as the reference SAC actor); the PPO
ratio uses the pre-squash sample, for which the tanh Jacobian cancels.

Rollout layout: time T x teachers K x envs E; training tensors are (K, T*E, ...), so every minibatch holds the
same number of samples of every teacher.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import torch

from raptor.conventions import ACTION_DIM, TEACHER_OBS_DIM
from raptor.errors import ConfigError
from raptor.rl.batched import BatchedAdam, BatchedMLP
from raptor.sim.airframe import Airframe
from raptor.sim.config import EnvConfig
from raptor.sim.env import BatchedQuadrotorEnv

OBS_DIM, ACT_DIM = TEACHER_OBS_DIM, ACTION_DIM  # the reference teacher observation; the privileged one is 29


@dataclass(frozen=True)
class PPOConfig:
    envs_per_teacher: int = 256
    horizon: int = 32  # env steps per env per iteration
    epochs: int = 3
    minibatches: int = 4
    learning_rate: float = 1e-3
    max_learning_rate: float = 1e-2
    kl_target: float | None = 0.01  # per-teacher adaptive learning rate; None keeps it fixed
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip: float = 0.2
    value_coef: float = 1.0
    entropy_coef: float = 0.0
    smoothness_coef: float = 0.1  # CAPS temporal loss weight on |tanh(mean(s_t)) - tanh(mean(s_t+1))|
    max_grad_norm: float = 1.0
    init_log_std: float = -1.0
    # Floor of the exploration std (pre-squash), annealed log-linearly from start to end over `std_anneal_steps`
    # env steps per teacher: the d_action reward term pulls the learned std down; too early, exploration dies;
    # too late, the deterministic teacher hovers with the bias of the noisy one (a few cm steady offset).
    std_floor_start: float = 0.2
    std_floor_end: float = 0.01
    std_anneal_steps: int = 2_000_000
    reward_scale: float = 0.1  # returns up to ~150 -> ~15 for the critic
    actor_hidden: tuple[int, ...] = (64, 64)  # the reference actor: 26 -> 64 -> 64 -> (mean, log-std)
    critic_hidden: tuple[int, ...] = (128, 128)

    def __post_init__(self) -> None:
        if self.envs_per_teacher * self.horizon % self.minibatches:
            raise ConfigError("PPOConfig: envs_per_teacher * horizon must be divisible by minibatches")
        if not 0 < self.std_floor_end <= self.std_floor_start:
            raise ConfigError("PPOConfig: need 0 < std_floor_end <= std_floor_start")
        if min(self.envs_per_teacher, self.horizon, self.epochs, self.minibatches) <= 0:
            raise ConfigError("PPOConfig: envs_per_teacher, horizon, epochs and minibatches must be positive")

    def to_json(self) -> dict:
        d = asdict(self)
        d["actor_hidden"], d["critic_hidden"] = list(self.actor_hidden), list(self.critic_hidden)
        return d

    @staticmethod
    def from_json(d: dict) -> PPOConfig:
        d = dict(d)
        d["actor_hidden"], d["critic_hidden"] = tuple(d["actor_hidden"]), tuple(d["critic_hidden"])
        return PPOConfig(**d)

    def min_log_std(self, env_steps: int) -> float:
        frac = min(env_steps / max(self.std_anneal_steps, 1), 1.0)
        return math.log(self.std_floor_start) + frac * (math.log(self.std_floor_end) - math.log(self.std_floor_start))

    @property
    def steps_per_iteration(self) -> int:
        """Env steps per teacher per iteration."""
        return self.envs_per_teacher * self.horizon


@dataclass
class IterationStats:
    policy_loss: torch.Tensor  # (K,)
    value_loss: torch.Tensor  # (K,)
    smoothness: torch.Tensor  # (K,) mean |d tanh(mean)| per motor
    kl: torch.Tensor  # (K,)
    std: torch.Tensor  # (K,) mean exploration std (pre-squash)
    episode_return: torch.Tensor  # (K,) mean return of the episodes finished this iteration (nan if none)
    episode_length: torch.Tensor  # (K,)
    extra: dict = field(default_factory=dict)


class TeacherActors(torch.nn.Module):
    """The deterministic teachers, batched: (K, N, D) -> (K, N, 4). output "tanh": tanh(mean(obs)) (our PPO and
    SAC); "clip": clip(mean(obs), -1, 1) (stable-baselines3 PPO's unsquashed Gaussian); a sequence gives each
    teacher its own (a run that mixes backends).

    A teacher reads the first sizes[0] observation values: a reference teacher (26 inputs) flies from the privileged
    observation (29) too, whose first 26 values are the teacher observation."""

    def __init__(self, mlp: BatchedMLP, output: str | Sequence[str] = "tanh") -> None:
        super().__init__()
        heads = [output] * mlp.num if isinstance(output, str) else list(output)
        if len(heads) != mlp.num or any(h not in ("tanh", "clip") for h in heads):
            raise ConfigError(f"teacher output must be tanh or clip (one per teacher), got {output!r}")
        self.mlp = mlp
        self.output = heads[0] if len(set(heads)) == 1 else "mixed"
        self.register_buffer("tanh_head", torch.tensor([h == "tanh" for h in heads]), persistent=False)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        d = self.mlp.sizes[0]
        if obs.shape[-1] < d:
            raise ConfigError(f"this teacher reads {d} observation values, got {obs.shape[-1]}: "
                              "evaluate it on the privileged teacher observation (EnvConfig(observation='privileged'))")
        y = self.mlp(obs[..., :d])[..., :ACT_DIM]
        if self.output == "tanh":
            return torch.tanh(y)
        if self.output == "clip":
            return y.clamp(-1.0, 1.0)
        return torch.where(self.tanh_head.view(-1, *([1] * (y.ndim - 1))), torch.tanh(y), y.clamp(-1.0, 1.0))


class BatchedPPO:
    """K teachers, one airframe each, trained together. `iterate()` = one rollout + one update for all."""

    def __init__(self, airframes: list[Airframe], config: PPOConfig, env_config: EnvConfig, seed: int = 0) -> None:
        if not env_config.teacher_observation:
            raise ConfigError("teachers train on a teacher observation: EnvConfig(observation='privileged' or "
                              "'teacher')")
        self.config, self.env_config = config, env_config
        self.obs_dim = OD = env_config.obs_dim
        self.K = K = len(airframes)
        self.E = config.envs_per_teacher
        self.device = torch.device(env_config.device)
        self.env = BatchedQuadrotorEnv(airframes, self.E, env_config, seed=seed)
        gen = torch.Generator().manual_seed(seed)
        self.actor = BatchedMLP(K, (OD, *config.actor_hidden, ACT_DIM), gen, output_scale=0.01).to(self.device)
        self.critic = BatchedMLP(K, (OD, *config.critic_hidden, 1), gen).to(self.device)
        with torch.no_grad():  # start every teacher at its airframe's hover command (all motors equal)
            hover = torch.tensor([a.hover_action for a in airframes], dtype=torch.float32).clamp(-0.95, 0.95)
            self.actor.biases[-1].copy_(torch.atanh(hover)[:, None, None].expand(K, 1, ACT_DIM).to(self.device))
        self.log_std = torch.nn.Parameter(torch.full((K, 1, ACT_DIM), config.init_log_std, device=self.device))
        params = [*self.actor.parameters(), self.log_std, *self.critic.parameters()]
        self.optimizer = BatchedAdam(params, K, config.learning_rate, max_grad_norm=config.max_grad_norm)
        self.sample_gen = torch.Generator(device=self.device).manual_seed(seed + 1)
        self.airframes, self.seed = list(airframes), seed
        self.obs = self.env.reset()
        self.iteration = 0
        self.env_steps = 0  # per teacher
        self._ep_return = torch.zeros(self.env.num_envs, device=self.device)
        self._ep_length = torch.zeros(self.env.num_envs, device=self.device)

    # ------------------------------------------------------------------------------------------------------------
    def _view(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(self.K, self.E, *x.shape[1:])

    def deterministic_actors(self) -> TeacherActors:
        return TeacherActors(self.actor)

    @torch.no_grad()
    def collect(self) -> dict[str, torch.Tensor]:
        cfg, K, E, T = self.config, self.K, self.E, self.config.horizon
        dtype = self.obs.dtype
        buf = {
            "obs": torch.empty((T, K, E, self.obs_dim), device=self.device, dtype=dtype),
            "next_obs": torch.empty((T, K, E, self.obs_dim), device=self.device, dtype=dtype),
            "u": torch.empty((T, K, E, ACT_DIM), device=self.device, dtype=dtype),
            "logp": torch.empty((T, K, E), device=self.device, dtype=dtype),
            "value": torch.empty((T + 1, K, E), device=self.device, dtype=dtype),
            "reward": torch.empty((T, K, E), device=self.device, dtype=dtype),
            "done": torch.empty((T, K, E), device=self.device, dtype=dtype),
        }
        finished_return = torch.zeros(K, device=self.device)
        finished_length = torch.zeros(K, device=self.device)
        finished = torch.zeros(K, device=self.device)
        floor = cfg.min_log_std(self.env_steps)
        std = torch.exp(self.log_std.clamp(min=floor))
        for t in range(T):
            o = self._view(self.obs)
            mean = torch.tanh(self.actor(o))
            u = mean + std * torch.randn(mean.shape, generator=self.sample_gen, device=self.device, dtype=dtype)
            logp = _gaussian_logp(u, mean, std)
            value = self.critic(o)[..., 0]
            next_obs, rew, term, trunc, info = self.env.step(u.clamp(-1.0, 1.0).reshape(-1, ACT_DIM))
            final = info.get("final_observation", next_obs)
            r = rew * cfg.reward_scale
            if bool(trunc.any()):  # time limit: bootstrap from the value of the last state (not terminal)
                v_final = self.critic(self._view(final))[..., 0].reshape(-1)
                r = r + cfg.gamma * torch.where(trunc, v_final, torch.zeros_like(v_final))
            done = term | trunc
            buf["obs"][t], buf["next_obs"][t] = o, self._view(final)
            buf["u"][t], buf["logp"][t], buf["value"][t] = u, logp, value
            buf["reward"][t], buf["done"][t] = self._view(r), self._view(done.to(dtype))
            self._ep_return += rew
            self._ep_length += 1
            if bool(done.any()):
                d = self._view(done.to(dtype))
                finished += d.sum(-1)
                finished_return += (self._view(self._ep_return) * d).sum(-1)
                finished_length += (self._view(self._ep_length) * d).sum(-1)
                self._ep_return = torch.where(done, torch.zeros_like(self._ep_return), self._ep_return)
                self._ep_length = torch.where(done, torch.zeros_like(self._ep_length), self._ep_length)
            self.obs = next_obs
        buf["value"][T] = self.critic(self._view(self.obs))[..., 0]
        self.env_steps += T * E
        nan = torch.full_like(finished, math.nan)
        buf["episode_return"] = torch.where(finished > 0, finished_return / finished.clamp(min=1), nan)
        buf["episode_length"] = torch.where(finished > 0, finished_length / finished.clamp(min=1), nan)
        return buf

    @torch.no_grad()
    def advantages(self, buf: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        cfg = self.config
        T = cfg.horizon
        adv = torch.zeros_like(buf["reward"])
        last = torch.zeros_like(buf["reward"][0])
        for t in reversed(range(T)):
            notdone = 1.0 - buf["done"][t]
            delta = buf["reward"][t] + cfg.gamma * buf["value"][t + 1] * notdone - buf["value"][t]
            last = delta + cfg.gamma * cfg.gae_lambda * notdone * last
            adv[t] = last
        returns = adv + buf["value"][:T]
        return adv, returns

    def update(self, buf: dict[str, torch.Tensor], active: torch.Tensor | None = None) -> IterationStats:
        cfg, K = self.config, self.K
        adv, returns = self.advantages(buf)

        def flat(x: torch.Tensor) -> torch.Tensor:  # (T, K, E, ...) -> (K, T*E, ...)
            return x.transpose(0, 1).reshape(K, -1, *x.shape[3:])

        obs, next_obs, u, logp_old = flat(buf["obs"]), flat(buf["next_obs"]), flat(buf["u"]), flat(buf["logp"])
        adv, returns = flat(adv), flat(returns)
        adv = (adv - adv.mean(1, keepdim=True)) / (adv.std(1, keepdim=True) + 1e-8)
        N = obs.shape[1]
        mb = N // cfg.minibatches
        floor = cfg.min_log_std(self.env_steps)
        sums = {k: torch.zeros(K, device=self.device) for k in ("pl", "vl", "sm", "kl")}
        count = 0
        chunks = update_chunks(K, mb, self.device)
        for _ in range(cfg.epochs):
            perm = torch.randperm(N, generator=self.sample_gen, device=self.device)
            epoch_kl = torch.zeros(K, device=self.device)
            for i in range(cfg.minibatches):
                idx = perm[i * mb:(i + 1) * mb]
                self.optimizer.zero_grad()
                parts = []
                for sl in chunks:  # the teachers are independent: each chunk's loss and gradient are its own
                    o, a_u, lp0, A, R = (x[sl][:, idx] for x in (obs, u, logp_old, adv, returns))
                    log_std = self.log_std[sl].clamp(min=floor)
                    mean = torch.tanh(self.actor(o, sl))
                    lp = _gaussian_logp(a_u, mean, torch.exp(log_std))
                    log_ratio = lp - lp0
                    ratio = torch.exp(log_ratio)
                    pl = -torch.minimum(ratio * A, ratio.clamp(1 - cfg.clip, 1 + cfg.clip) * A).mean(1)
                    vl = (self.critic(o, sl)[..., 0] - R).pow(2).mean(1)
                    mean_next = torch.tanh(self.actor(next_obs[sl][:, idx], sl))
                    sm = (mean - mean_next).abs().mean((1, 2))
                    ent = (log_std + 0.5 * math.log(2 * math.pi * math.e)).sum((1, 2))
                    loss = pl + cfg.value_coef * vl + cfg.smoothness_coef * sm - cfg.entropy_coef * ent
                    loss.sum().backward()
                    with torch.no_grad():
                        parts.append((pl.detach(), vl.detach(), sm.detach(), ((ratio - 1) - log_ratio).mean(1)))
                self.optimizer.step(active)
                with torch.no_grad():
                    pl, vl, sm, kl = (torch.cat(x) for x in zip(*parts))
                    epoch_kl += kl
                    for key, val in (("pl", pl), ("vl", vl), ("sm", sm), ("kl", kl)):
                        sums[key] += val
                count += 1
            if cfg.kl_target is not None:  # per-teacher adaptive step size (as in rsl_rl), once per epoch
                kl_mean = epoch_kl / cfg.minibatches
                lr = self.optimizer.lr
                lr = torch.where(kl_mean > 2 * cfg.kl_target, lr / 1.5, lr)
                lr = torch.where(kl_mean < cfg.kl_target / 2, lr * 1.5, lr)
                self.optimizer.lr = lr.clamp(1e-5, cfg.max_learning_rate)
        with torch.no_grad():
            self.log_std.clamp_(min=floor)
        self.iteration += 1
        return IterationStats(policy_loss=sums["pl"] / count, value_loss=sums["vl"] / count,
                              smoothness=sums["sm"] / count, kl=sums["kl"] / count,
                              std=torch.exp(self.log_std).mean((1, 2)).detach(),
                              episode_return=buf["episode_return"], episode_length=buf["episode_length"])

    def iterate(self, active: torch.Tensor | None = None) -> IterationStats:
        return self.update(self.collect(), active)

    def keep(self, rows: list[int]) -> None:
        """Continue with the teachers `rows` only (their networks, exploration, optimizer state and learning rates;
        iteration and step counts unchanged): finished teachers leave the batch and cost nothing more. Their envs
        restart fresh episodes, as on a resume."""
        idx = torch.as_tensor(rows, dtype=torch.long, device=self.device)

        def sliced(mlp: BatchedMLP) -> BatchedMLP:
            new = BatchedMLP(len(rows), mlp.sizes).to(self.device)
            with torch.no_grad():
                for dst, src in zip([*new.weights, *new.biases], [*mlp.weights, *mlp.biases]):
                    dst.copy_(src[idx])
            return new

        self.actor, self.critic = sliced(self.actor), sliced(self.critic)
        self.log_std = torch.nn.Parameter(self.log_std.detach()[idx].clone())
        opt = BatchedAdam([*self.actor.parameters(), self.log_std, *self.critic.parameters()], len(rows),
                          self.config.learning_rate, max_grad_norm=self.config.max_grad_norm)
        opt.lr, opt.t = self.optimizer.lr[idx].clone(), self.optimizer.t
        with torch.no_grad():
            for dst, src in zip(opt.m, self.optimizer.m):
                dst.copy_(src[idx])
            for dst, src in zip(opt.v, self.optimizer.v):
                dst.copy_(src[idx])
        self.optimizer = opt
        self.airframes = [self.airframes[r] for r in rows]
        self.K = len(rows)
        self.env = BatchedQuadrotorEnv(self.airframes, self.E, self.env_config, seed=self.seed + 7919 * self.iteration)
        self.obs = self.env.reset()
        self._ep_return = torch.zeros(self.env.num_envs, device=self.device)
        self._ep_length = torch.zeros(self.env.num_envs, device=self.device)

    # ------------------------------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Everything needed to continue training (the env restarts fresh episodes on load)."""
        return {"actor": self.actor.state_dict(), "critic": self.critic.state_dict(), "log_std": self.log_std.detach(),
                "optimizer": self.optimizer.state_dict(), "iteration": self.iteration, "env_steps": self.env_steps,
                "sample_gen": self.sample_gen.get_state(), "env_gen": self.env.gen.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.actor.load_state_dict(state["actor"])
        self.critic.load_state_dict(state["critic"])
        with torch.no_grad():
            self.log_std.copy_(state["log_std"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.iteration, self.env_steps = int(state["iteration"]), int(state["env_steps"])
        self.sample_gen.set_state(state["sample_gen"])
        self.env.gen.set_state(state["env_gen"])
        self.obs = self.env.reset()
        self._ep_return.zero_()
        self._ep_length.zero_()


# Samples (teachers x minibatch rows) per chunk of the CPU update: the update's activations, (K, minibatch, 128) per
# layer, outgrow the caches as K grows; chunks of 16 teachers at 2048 rows ran each minibatch in half the time of
# K = 64 at once on 2 cores (benchmarks/teacher_profile.py, docs/benchmarks.md). On a GPU one chunk (all K) is best.
UPDATE_CHUNK_SAMPLES = 32768


def update_chunks(K: int, minibatch: int, device: torch.device) -> list[slice]:
    """The teacher slices the update computes its loss and gradients over, one backward each."""
    per = K if device.type != "cpu" else max(1, UPDATE_CHUNK_SAMPLES // max(minibatch, 1))
    return [slice(k, min(k + per, K)) for k in range(0, K, per)]


def _gaussian_logp(u: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    z = (u - mean) / std
    return (-0.5 * z * z - torch.log(std) - 0.5 * math.log(2 * math.pi)).sum(-1)
