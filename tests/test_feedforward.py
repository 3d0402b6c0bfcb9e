"""The setpoint's acceleration as a lead of the position error (raptor.policy.feedforward, issue #42 item 3)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from raptor import policy as rp
from raptor.conventions import OBS_P
from raptor.errors import InputError, PolicyFileError
from raptor.policy.feedforward import SetpointLead


def test_the_lead_shifts_only_the_position_error_by_a_over_k_within_its_limit():
    lead = SetpointLead(gain_s2=5.0, max_lead_m=0.3)
    obs = torch.randn(3, 22)
    a = torch.tensor([[1.0, -0.5, 0.0], [10.0, 0.0, -10.0], [0.0, 0.0, 0.0]])
    out = lead.apply(obs, a)
    assert torch.allclose(out[:, OBS_P], obs[:, OBS_P] - torch.tensor([[0.2, -0.1, 0.0], [0.3, 0.0, -0.3], [0, 0, 0]]))
    assert torch.equal(out[:, 3:], obs[:, 3:]) and torch.equal(lead.apply(obs, None), obs)
    assert torch.equal(out[2], obs[2])  # no acceleration: nothing changes (hover, steps)


def test_policy_step_applies_its_lead_and_refuses_bad_accelerations():
    base = rp.load("default")
    led = base.with_lead(SetpointLead(gain_s2=6.0))
    assert SetpointLead.from_metadata(led.metadata) == SetpointLead(gain_s2=6.0)
    assert base.lead is None and led.with_lead(None).lead is None
    obs = torch.randn(4, 22) * 0.2
    a = torch.randn(4, 3)
    shifted = obs.clone()
    shifted[:, OBS_P] -= (a * np.float32(1 / 6.0)).clamp(-0.3, 0.3)
    led.reset(4)
    base.reset(4)
    assert torch.allclose(led.step(obs, acceleration_setpoint=a), base.step(shifted), atol=1e-6)
    with pytest.raises(InputError, match="acceleration_setpoint"):
        led.step(obs, acceleration_setpoint=torch.full((4, 3), float("nan")))
    with pytest.raises(PolicyFileError, match="gain_s2"):
        SetpointLead(gain_s2=0.0)
    with pytest.raises(PolicyFileError, match="deployment.lead"):
        SetpointLead.from_metadata({"deployment": {"lead": {"gain": 1}}})


def test_the_lead_takes_the_lag_out_of_tracking_a_figure_eight():
    """Physics: a policy that follows a moving setpoint settles behind it by about a_des / k. Shown the setpoint's
    acceleration as a lead, the shipped default follows a figure-eight closer on the same starts (final error
    median), and hover is unchanged (no acceleration, nothing is led)."""
    from raptor.metrics import summarize
    from raptor.sim.airframe_files import resolve_airframes
    from raptor.sim.scenarios import rollout

    afs = resolve_airframes("sampled:6:4242")
    base = rp.load("default")
    led = base.with_lead(SetpointLead(gain_s2=6.0))
    err = {}
    for name, pol in (("base", base), ("led", led)):
        m = summarize(rollout(pol, afs, "tracking", 2, 3))["overall"]
        err[name] = m["final_position_error_median"]
    assert err["led"] < 0.8 * err["base"], err
    h0, h1 = (summarize(rollout(p, afs, "hover", 2, 3))["overall"] for p in (base, led))
    assert h0["final_position_error_median"] == h1["final_position_error_median"]
