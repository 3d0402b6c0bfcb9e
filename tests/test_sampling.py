"""The domain-randomization sampler against the 1000 RAPTOR teacher airframes (dr_airframes.npz)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import load_npz
from scipy import stats

from raptor.errors import AirframeError
from raptor.sim.airframe import Airframe, named_airframe
from raptor.sim.airframe_files import load_airframes, save_airframes
from raptor.sim.sampling import LATENT_NAMES, derive_parameters, latents, sample_airframes


@pytest.fixture(scope="module")
def dr(fixtures):
    return load_npz(fixtures / "dr_airframes.npz")


def _flatten(x, prefix=""):
    if isinstance(x, dict):
        for k, v in x.items():
            yield from _flatten(v, f"{prefix}.{k}")
    else:
        yield prefix, x


def _fixture_latents(dr) -> np.ndarray:
    names = [str(n) for n in dr["latent_names"]]
    return np.stack([dr["latent"][:, names.index(n)] for n in LATENT_NAMES], 1)


def test_derivation_from_latent_draws_reproduces_every_parameter(dr):
    derived = derive_parameters(_fixture_latents(dr))
    for k, (ours, ref_json) in enumerate(zip(derived, dr["params_json"])):
        mine = dict(_flatten(ours))
        for key, value in _flatten(json.loads(str(ref_json))):
            if key.startswith(".domain_randomization"):
                continue  # the reference zeroes the DR block after sampling; we do not write it
            assert key in mine, f"airframe {k}: missing {key}"
            np.testing.assert_allclose(np.asarray(mine[key], float), np.asarray(value, float), rtol=0, atol=1e-12,
                                       err_msg=f"airframe {k}: {key}")


def test_sampler_stream_is_bit_exact_with_the_reference(dr):
    ours = latents(len(dr["latent"]), int(dr["dr_seed"]))
    np.testing.assert_array_equal(ours, _fixture_latents(dr))


def _summary(airframes: list[Airframe]) -> dict[str, np.ndarray]:
    def arr(path):
        return np.array([a.array(path) for a in airframes])

    r = arr("dynamics.rotor_positions")
    J = arr("dynamics.J_inv")
    c = arr("dynamics.rotor_thrust_coefficients")
    f_max = c[:, 0].sum(-1)
    return {
        "mass": arr("dynamics.mass"),
        "thrust_to_weight": np.array([a.thrust_to_weight for a in airframes]),
        "torque_to_inertia": np.abs(r[:, 0, 0]) * np.sqrt(2) * f_max * J[:, 0, 0],
        "size": np.linalg.norm(r, axis=-1).max(-1),
        "torque_constant": arr("dynamics.rotor_torque_constants")[:, 0],
        "tau_rise": arr("dynamics.rotor_time_constants_rising")[:, 0],
        "tau_fall": arr("dynamics.rotor_time_constants_falling")[:, 0],
    }


def test_another_seed_matches_the_teacher_distribution(dr):
    ref = [Airframe(f"ref{i}", json.loads(str(p))) for i, p in enumerate(dr["params_json"])]
    ours = sample_airframes(1000, seed=int(dr["dr_seed"]) + 17)
    a, b = _summary(ours), _summary(ref)
    for key in a:
        p = stats.ks_2samp(a[key], b[key]).pvalue
        assert p > 0.01, f"{key}: KS p = {p:.4f}"
    assert not np.array_equal(a["mass"], b["mass"])  # a different seed is a different draw


def test_sampled_ranges_match_spec():
    s = _summary(sample_airframes(500, seed=3))
    assert 1.5 <= s["thrust_to_weight"].min() and s["thrust_to_weight"].max() <= 5.0 + 1e-5
    assert 0.02 - 1e-6 <= s["mass"].min() and s["mass"].max() <= 5.0 + 1e-6
    np.testing.assert_allclose(np.clip(s["torque_to_inertia"], 40, 1200), s["torque_to_inertia"], rtol=2e-3)


def test_airframe_file_round_trip_and_validation(tmp_path):
    afs = sample_airframes(3, seed=5)
    path = tmp_path / "af.json"
    save_airframes(path, afs)
    back = load_airframes(path)
    assert [a.parameters for a in back] == [a.parameters for a in afs]
    doc = json.loads(path.read_text())
    doc["airframes"][1]["parameters"]["dynamics"]["mass"] = -1.0
    path.write_text(json.dumps(doc))
    with pytest.raises(AirframeError, match="airframe #1.*dynamics.mass"):
        load_airframes(path)
    doc["airframes"][1]["parameters"]["dynamics"]["mass"] = 1.0
    doc["airframes"][0]["parameters"]["dynamics"]["J_inv"] = [[1.0, 0, 0], [0, float("nan"), 0], [0, 0, 1.0]]
    path.write_text(json.dumps(doc))
    with pytest.raises(AirframeError, match="J_inv.*not finite"):
        load_airframes(path)
    doc["airframes"][0]["parameters"]["dynamics"]["rotor_positions"] = [[0, 0, 0]]
    path.write_text(json.dumps(doc))
    with pytest.raises(AirframeError, match="rotor_positions.*shape"):
        load_airframes(path)
    path.write_text("{ not json")
    with pytest.raises(AirframeError, match="not valid JSON"):
        load_airframes(path)


def test_named_airframes_match_spec_table():
    cf, x500, mrs = named_airframe("crazyflie"), named_airframe("x500"), named_airframe("mrs")
    assert cf.mass_kg == pytest.approx(0.0306) and cf.thrust_to_weight == pytest.approx(1.467, abs=1e-3)
    assert x500.thrust_to_weight == pytest.approx(3.247, abs=1e-3)
    assert x500.array("dynamics.J")[0, 0] == pytest.approx(0.1705)  # the reference's typo, kept on purpose
    assert mrs.array("dynamics.action_limit.max") == 2000
    # RAPTOR motor order: front-right, back-right, back-left, front-left
    signs = np.sign(x500.array("dynamics.rotor_positions")[:, :2])
    np.testing.assert_array_equal(signs, [[1, -1], [-1, -1], [-1, 1], [1, 1]])
    with pytest.raises(AirframeError, match="unknown airframe 'nope'"):
        named_airframe("nope")


def test_race_option_extends_thrust_to_weight_only():
    """sampled:N:SEED:race reaches flightmare-class thrust-to-weight; the default spec is unchanged (the golden
    fixtures pin it bit-exact to the reference)."""
    from raptor.sim.airframe_files import resolve_airframes

    race = resolve_airframes("sampled:300:5:race")
    plain = resolve_airframes("sampled:300:5")
    tw = [a.thrust_to_weight for a in race]
    assert max(tw) > 10.0 and min(tw) >= 1.5 - 1e-6 and max(tw) <= 12.0 + 1e-3
    assert max(a.thrust_to_weight for a in plain) <= 5.0 + 1e-3
    assert all(a.name.startswith("race5_") for a in race)
    assert all(0.02 - 1e-9 <= a.mass_kg <= 5.0 * 1.1 + 1e-6 for a in race)  # RAPTOR's mass range (+ size deviation)
    assert [a.parameters for a in resolve_airframes("sampled:300:5")] == [a.parameters for a in plain]


def test_race_fast_class_has_race_motors_and_the_references_disturbance_envelope():
    """sampled:N:SEED:race-fast: thrust-to-weight 4-12 with motors that spin up and down in 0.02-0.05 s, and a
    disturbance whose size relative to the weight stays within RAPTOR's (mu <= 0.3 x 4, std = mu x 5 x m / 3 N at
    most: 0.204 of the weight), where the race option's grows with thrust-to-weight to more than the weight."""
    from raptor.sim.airframe_files import resolve_airframes
    from raptor.sim.sampling import RACE_FAST_RANGES, RandomizationRanges

    def rel_force(a):  # disturbance force std / weight
        return a.parameters["disturbances"]["random_force"]["std"] / (a.mass_kg * 9.81)

    fast = resolve_airframes("sampled:300:5:race-fast")
    tw = [a.thrust_to_weight for a in fast]
    assert min(tw) >= 4.0 - 1e-3 and max(tw) <= 12.0 + 1e-3 and max(tw) > 11.0
    for a in fast:
        d = a.parameters["dynamics"]
        assert all(0.02 - 1e-6 <= t <= 0.05 + 1e-6 for t in d["rotor_time_constants_rising"]
                   + d["rotor_time_constants_falling"])
        tti = abs(d["rotor_positions"][0][0]) * np.sqrt(2) * (a.thrust_to_weight * a.mass_kg * 9.81 / 4) / d["J"][0][0]
        assert 200 * 0.97 <= tti <= 1200 * 1.03  # torque-to-inertia (J rounded to 6 decimals like the reference)
    assert max(rel_force(a) for a in fast) <= 0.3 * 4 * 5 / 3 / 9.81 + 1e-3
    assert max(rel_force(a) for a in resolve_airframes("sampled:300:5:race")) > 0.8
    assert max(rel_force(a) for a in resolve_airframes("sampled:1000:0")) <= 0.3 * 4 * 5 / 3 / 9.81 + 1e-3
    assert all(a.name.startswith("rfast5_") and a.meta["ranges"] == "race-fast" for a in fast)
    with pytest.raises(ValueError, match="disturbance_t2w_cap"):
        RandomizationRanges(disturbance_t2w_cap=0.5)
    assert RACE_FAST_RANGES.disturbance_t2w_cap == 5.0


def test_joined_spec_concatenates_in_order_and_refuses_overlap():
    """'A+B' is A's airframes then B's, each bit-exact with its own spec (a run's ids index the joined list), and
    joining a set with itself is refused in one line (its teachers would be trained twice)."""
    from raptor.sim.airframe_files import resolve_airframes

    joined = resolve_airframes("sampled:5:0+sampled:3:1:race")
    assert [a.parameters for a in joined] == ([a.parameters for a in resolve_airframes("sampled:5:0")]
                                              + [a.parameters for a in resolve_airframes("sampled:3:1:race")])
    assert [a.name for a in joined][4:6] == ["dr0_4", "race1_0"]
    for bad in ("sampled:5:0+sampled:5:0", "sampled:5:0+", "+crazyflie"):
        with pytest.raises(AirframeError, match="bad airframe spec"):
            resolve_airframes(bad)
