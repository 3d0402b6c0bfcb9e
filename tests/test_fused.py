"""The fused transition (raptor.sim.fused) pinned to the reference functions (raptor.sim.dynamics / mdp)."""

from __future__ import annotations

import pytest
import torch

from raptor.sim import mdp
from raptor.sim.airframe import named_airframe
from raptor.sim.airframe_batch import AirframeBatch
from raptor.sim.config import EnvConfig
from raptor.sim.env import BatchedQuadrotorEnv
from raptor.sim.functional import transition
from raptor.sim.fused import make_transition, pack_constants
from raptor.sim.sampling import sample_airframes

F64 = torch.float64
ALL_TERMS = mdp.RewardConfig(linear_velocity=0.3, angular_velocity=0.2, linear_acceleration=0.01,
                             angular_acceleration=0.001, action=0.5, position_clip=0.7, non_negative=True,
                             orientation_term="full")


def _random_inputs(B: int, gen: torch.Generator):
    q = torch.randn(B, 4, generator=gen, dtype=F64)
    x = torch.cat([torch.rand(B, 3, generator=gen, dtype=F64) * 2 - 1, q / q.norm(dim=-1, keepdim=True),
                   torch.rand(B, 3, generator=gen, dtype=F64) * 4 - 2,
                   torch.rand(B, 3, generator=gen, dtype=F64) * 20 - 10,
                   torch.rand(B, 4, generator=gen, dtype=F64)], -1)
    a = torch.rand(B, 4, generator=gen, dtype=F64) * 3 - 1.5
    la = torch.rand(B, 4, generator=gen, dtype=F64) * 2 - 1
    f, tq = torch.randn(B, 3, generator=gen, dtype=F64) * 0.1, torch.randn(B, 3, generator=gen, dtype=F64) * 1e-4
    tgt, ntgt = torch.randn(B, 6, generator=gen, dtype=F64) * 0.3, torch.randn(B, 6, generator=gen, dtype=F64) * 0.3
    return x, a, la, f, tq, tgt, ntgt


@pytest.mark.parametrize("reward, observation, relative", [
    (mdp.RewardConfig(), "student", False),
    (mdp.RewardConfig(), "teacher", True),
    (mdp.RewardConfig(), "privileged", True),
    (ALL_TERMS, "student", True),
])
def test_fused_equals_reference_transition(reward, observation, relative):
    afs = sample_airframes(40, seed=9) + [named_airframe("mrs"), named_airframe("x500")]
    params = AirframeBatch.from_airframes(afs, dtype=F64).index(torch.arange(42).repeat(6))
    x, a, la, f, tq, tgt, ntgt = _random_inputs(params.batch_size, torch.Generator().manual_seed(1))
    ref = transition(params, reward, observation, x, a, la, f, tq, tgt, ntgt if relative else None)
    C, index = pack_constants(params)
    fused = make_transition(index, reward, observation, relative)
    out = fused(C, x.t(), a.t(), la.t(), f.t(), tq.t(), tgt.t(), ntgt.t())
    torch.testing.assert_close(out[0].t(), ref[0], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(out[1], ref[1], rtol=1e-10, atol=1e-10)
    assert torch.equal(out[2], ref[2])
    torch.testing.assert_close(out[3].t(), ref[3], rtol=1e-12, atol=1e-12)


def test_compiled_env_matches_eager_env():
    afs = sample_airframes(16, seed=4)
    cfg = EnvConfig(observation="teacher", target="langevin", dtype="float64")
    eager = BatchedQuadrotorEnv(afs, 4, cfg, seed=5)
    fast = BatchedQuadrotorEnv(afs, 4, EnvConfig(**{**cfg.__dict__, "compile": True}), seed=5)
    torch.testing.assert_close(eager.reset(), fast.reset())
    gen = torch.Generator().manual_seed(0)
    for _ in range(25):
        a = torch.rand(64, 4, generator=gen, dtype=F64) * 2 - 1
        o1, r1, t1, tr1, _ = eager.step(a)
        o2, r2, t2, tr2, _ = fast.step(a)
        torch.testing.assert_close(o1, o2, rtol=1e-9, atol=1e-9)
        torch.testing.assert_close(r1, r2, rtol=1e-9, atol=1e-9)
        assert torch.equal(t1, t2) and torch.equal(tr1, tr2)
