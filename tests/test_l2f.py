"""Optional checks in l2f itself (marker l2f; `pip install l2f==2.0.18`, which compiles for ~8 minutes)."""

from __future__ import annotations

from importlib.util import find_spec

import pytest

pytestmark = [pytest.mark.l2f,
              pytest.mark.skipif(find_spec("l2f") is None, reason="l2f is not installed (pip install l2f==2.0.18)"),
              pytest.mark.skipif(find_spec("foundation_policy") is None, reason="optional extra 'official' missing")]


def test_default_flies_l2f_starts_facing_any_way_at_least_as_well_as_the_published_policy():
    """#30's l2f check: l2f's crazyflie and its own starts, each turned by a random yaw. The default (in its heading
    frame) succeeds on >= 90 % and at least as often as the published policy; on the starts as sampled it is no
    worse than the published policy either."""
    from raptor import policy as rp
    from raptor.l2f_check import fly_l2f

    turned = {name: fly_l2f(rp.load(name), 128, seed=7, yaw=True) for name in ("default", "official")}
    assert turned["default"]["success"] >= 0.9, turned
    assert turned["default"]["success"] >= turned["official"]["success"], turned
    plain = {name: fly_l2f(rp.load(name), 128, seed=7, yaw=False) for name in ("default", "official")}
    assert plain["default"]["success"] >= plain["official"]["success"] - 0.02, plain
