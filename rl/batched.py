"""Networks and an optimizer batched over K independent teachers.

Every parameter has a leading teacher axis K: a dense layer is W (K, in, out) and b (K, 1, out), applied to
inputs (K, N, in) with one `baddbmm`. Teachers share no weights, gradients or optimizer state: the loss is a sum
of per-teacher losses, and `BatchedAdam` keeps per-teacher moments, learning rates and gradient-norm clipping,
so K teachers trained together follow exactly the updates they would follow alone.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch


class BatchedMLP(torch.nn.Module):
    """K independent MLPs: (K, N, sizes[0]) -> (K, N, sizes[-1]), ReLU between layers, identity output.

    Initialization is PyTorch's nn.Linear default (weights and biases U(+-1/sqrt(fan_in))), the reference's
    "Kaiming-uniform legacy"; `output_scale` shrinks the last layer (small initial policy means).
    """

    def __init__(self, num: int, sizes: Sequence[int], generator: torch.Generator | None = None,
                 output_scale: float = 1.0) -> None:
        super().__init__()
        self.num, self.sizes = num, tuple(int(s) for s in sizes)
        self.weights = torch.nn.ParameterList()
        self.biases = torch.nn.ParameterList()
        for i, (fan_in, fan_out) in enumerate(zip(self.sizes[:-1], self.sizes[1:])):
            bound = 1.0 / math.sqrt(fan_in)
            scale = output_scale if i == len(self.sizes) - 2 else 1.0
            w = (torch.rand((num, fan_in, fan_out), generator=generator) * 2 - 1) * bound * scale
            b = (torch.rand((num, 1, fan_out), generator=generator) * 2 - 1) * bound * scale
            self.weights.append(torch.nn.Parameter(w))
            self.biases.append(torch.nn.Parameter(b))

    def forward(self, x: torch.Tensor, teachers: slice | None = None) -> torch.Tensor:
        """x (K, N, sizes[0]) -> (K, N, sizes[-1]); with `teachers` a slice of the K, x holds only those rows."""
        n = len(self.weights)
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            if teachers is not None:
                w, b = w[teachers], b[teachers]
            x = torch.baddbmm(b, x, w)
            if i < n - 1:
                x = torch.relu(x)
        return x

    def teacher_state(self, k: int) -> dict[str, torch.Tensor]:
        """Teacher k's weights as plain (in, out) / (out,) tensors: layer{i}.weight (out, in), layer{i}.bias."""
        out = {}
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            out[f"layer{i}.weight"] = w[k].detach().t().contiguous().cpu()
            out[f"layer{i}.bias"] = b[k, 0].detach().contiguous().cpu()
        return out

    @torch.no_grad()
    def load_teacher_state(self, k: int, state: dict[str, torch.Tensor]) -> None:
        """Set teacher k from the plain layout of `teacher_state` (the inverse)."""
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            w[k].copy_(state[f"layer{i}.weight"].t())
            b[k, 0].copy_(state[f"layer{i}.bias"])


def per_teacher_norm(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """L2 norm over all entries of every tensor, per teacher (leading axis): (K,)."""
    sq = sum(t.reshape(t.shape[0], -1).pow(2).sum(-1) for t in tensors)
    return torch.sqrt(sq)


class BatchedAdam:
    """Adam with a learning rate (K,) and gradient-norm clipping per teacher; TF-style epsilon 1e-7 (spec 5.1)."""

    def __init__(self, params: Sequence[torch.nn.Parameter], num: int, lr: float, betas=(0.9, 0.999),
                 eps: float = 1e-7, max_grad_norm: float | None = None) -> None:
        self.params = list(params)
        self.lr = torch.full((num,), float(lr), device=self.params[0].device)
        self.betas, self.eps, self.max_grad_norm = betas, eps, max_grad_norm
        self.t = 0
        self.m = [torch.zeros_like(p) for p in self.params]
        self.v = [torch.zeros_like(p) for p in self.params]

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self, active: torch.Tensor | None = None) -> None:
        """One update; teachers with active[k] False are left unchanged."""
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in self.params]
        scale = torch.ones_like(self.lr)
        if self.max_grad_norm is not None:
            norm = per_teacher_norm(grads)
            scale = torch.clamp(self.max_grad_norm / (norm + 1e-6), max=1.0)
        if active is not None:
            scale = scale * active.to(scale.dtype)
        self.t += 1
        b1, b2 = self.betas
        c1, c2 = 1 - b1 ** self.t, 1 - b2 ** self.t
        for p, g, m, v in zip(self.params, grads, self.m, self.v):
            shape = (-1,) + (1,) * (p.ndim - 1)
            g = g * scale.view(shape)
            keep = scale.view(shape) > 0
            m_new = torch.where(keep, b1 * m + (1 - b1) * g, m)
            v_new = torch.where(keep, b2 * v + (1 - b2) * g * g, v)
            m.copy_(m_new)
            v.copy_(v_new)
            step = (self.lr.view(shape) / c1) * m / (torch.sqrt(v / c2) + self.eps)
            p.sub_(torch.where(keep, step, torch.zeros_like(step)))

    def state_dict(self) -> dict:
        return {"lr": self.lr.clone(), "t": self.t, "m": [m.clone() for m in self.m], "v": [v.clone() for v in self.v]}

    def load_state_dict(self, state: dict) -> None:
        self.lr = state["lr"].to(self.lr.device)
        self.t = int(state["t"])
        for dst, src in zip(self.m, state["m"]):
            dst.copy_(src)
        for dst, src in zip(self.v, state["v"]):
            dst.copy_(src)
