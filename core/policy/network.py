"""The RAPTOR student network (spec 5.2): Dense(22->16, ReLU) -> GRU(16, learned h0) -> Dense(16->4), 2084 parameters.

GRU in the PyTorch gate layout [r | z | n]:
    r = sigmoid(W_ir x + b_ir + W_hr h + b_hr),  z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
    n = tanh(W_in x + b_in + r * (W_hn h + b_hn)),  h' = z * h + (1 - z) * n
The output is not squashed; the simulator (and the deployment runner) clip actions to [-1, 1].
"""

from __future__ import annotations

import math

import torch
from torch import nn

INPUT_DIM, HIDDEN_DIM, OUTPUT_DIM = 22, 16, 4

# Parameter names and shapes, in the order of the flat layout used by exports (one schema for every consumer).
PARAMETER_LAYOUT: tuple[tuple[str, tuple[int, ...]], ...] = (
    ("input_layer.weight", (HIDDEN_DIM, INPUT_DIM)),
    ("input_layer.bias", (HIDDEN_DIM,)),
    ("gru.weight_ih", (3 * HIDDEN_DIM, HIDDEN_DIM)),
    ("gru.weight_hh", (3 * HIDDEN_DIM, HIDDEN_DIM)),
    ("gru.bias_ih", (3 * HIDDEN_DIM,)),
    ("gru.bias_hh", (3 * HIDDEN_DIM,)),
    ("gru.h0", (HIDDEN_DIM,)),
    ("output_layer.weight", (OUTPUT_DIM, HIDDEN_DIM)),
    ("output_layer.bias", (OUTPUT_DIM,)),
)
NUM_PARAMETERS = sum(math.prod(s) for _, s in PARAMETER_LAYOUT)  # 2084


class GRU(nn.Module):
    """A GRU cell with a learned initial hidden state h0."""

    def __init__(self, input_dim: int = HIDDEN_DIM, hidden_dim: int = HIDDEN_DIM) -> None:
        super().__init__()
        self.hidden_dim = hidden_dim
        self.weight_ih = nn.Parameter(torch.empty(3 * hidden_dim, input_dim))
        self.weight_hh = nn.Parameter(torch.empty(3 * hidden_dim, hidden_dim))
        self.bias_ih = nn.Parameter(torch.empty(3 * hidden_dim))
        self.bias_hh = nn.Parameter(torch.empty(3 * hidden_dim))
        self.h0 = nn.Parameter(torch.zeros(hidden_dim))
        ki, kh = 1 / math.sqrt(input_dim), 1 / math.sqrt(hidden_dim)
        nn.init.uniform_(self.weight_ih, -ki, ki)
        nn.init.uniform_(self.bias_ih, -ki, ki)
        nn.init.uniform_(self.weight_hh, -kh, kh)
        nn.init.uniform_(self.bias_hh, -kh, kh)

    def cell(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """x (B, in), h (B, H) -> h' (B, H)."""
        gi = x @ self.weight_ih.T + self.bias_ih
        gh = h @ self.weight_hh.T + self.bias_hh
        H = self.hidden_dim
        r = torch.sigmoid(gi[:, :H] + gh[:, :H])
        z = torch.sigmoid(gi[:, H:2 * H] + gh[:, H:2 * H])
        n = torch.tanh(gi[:, 2 * H:] + r * gh[:, 2 * H:])
        return z * h + (1 - z) * n


class RaptorPolicyNet(nn.Module):
    """The 2084-parameter student. `step` for deployment, `forward` for sequences with reset masks."""

    def __init__(self) -> None:
        super().__init__()
        self.input_layer = nn.Linear(INPUT_DIM, HIDDEN_DIM)
        self.gru = GRU(HIDDEN_DIM, HIDDEN_DIM)
        self.output_layer = nn.Linear(HIDDEN_DIM, OUTPUT_DIM)

    def initial_hidden(self, batch_size: int) -> torch.Tensor:
        """(B, 16) copies of the learned h0."""
        return self.gru.h0.expand(batch_size, -1).clone()

    def step(self, obs: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """obs (B, 22), h (B, 16) -> (raw action (B, 4), h' (B, 16))."""
        h = self.gru.cell(torch.relu(self.input_layer(obs)), h)
        return self.output_layer(h), h

    def forward(self, obs: torch.Tensor, reset: torch.Tensor | None = None,
                h: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Sequence mode: obs (T, B, 22), reset (T, B) bool (h <- h0 before step t where True), h (B, 16) or None.

        Returns (raw actions (T, B, 4), final hidden (B, 16)). The input layer runs on all steps at once.
        """
        T, B, _ = obs.shape
        x = torch.relu(self.input_layer(obs))
        h = self.initial_hidden(B) if h is None else h
        h0 = self.gru.h0.expand(B, -1)
        outs = []
        for t in range(T):
            if reset is not None:
                h = torch.where(reset[t][:, None], h0, h)
            h = self.gru.cell(x[t], h)
            outs.append(h)
        return self.output_layer(torch.stack(outs)), h

    def flat_parameters(self) -> dict[str, torch.Tensor]:
        """Parameters by the names of PARAMETER_LAYOUT."""
        return dict(self.named_parameters())
