"""The student network, policy files, the published checkpoint, and the deployment runner."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import batch_for, load_npz

import raptor.policy as rp
from raptor.conventions import OBS_R, M
from raptor.errors import InputError, PolicyFileError
from raptor.policy.io import default_metadata
from raptor.sim import dynamics, mdp

requires_official = pytest.mark.skipif(
    pytest.importorskip("importlib").util.find_spec("foundation_policy") is None,
    reason="optional extra 'official' (foundation-policy) not installed")


def test_parameter_count_and_layout():
    net = rp.RaptorPolicyNet()
    assert rp.NUM_PARAMETERS == 2084 == sum(p.numel() for p in net.parameters())
    assert [(k, tuple(v.shape)) for k, v in net.named_parameters()] == list(rp.PARAMETER_LAYOUT)
    assert torch.all(net.gru.h0 == 0)  # h0 is zero-initialized, then learned


def test_sequence_mode_with_resets_equals_step_mode():
    torch.manual_seed(0)
    net = rp.RaptorPolicyNet().double()
    with torch.no_grad():
        net.gru.h0.normal_()
    obs = torch.randn(30, 5, 22, dtype=torch.float64)
    reset = torch.zeros(30, 5, dtype=torch.bool)
    reset[0] = True
    reset[12, 1] = reset[20, 3] = True
    seq, _ = net(obs, reset)
    h = net.initial_hidden(5)
    for t in range(30):
        h = torch.where(reset[t][:, None], net.initial_hidden(5), h)
        a, h = net.step(obs[t], h)
        torch.testing.assert_close(a, seq[t])


@requires_official
def test_official_policy_reproduces_fixture(fixtures):
    d = load_npz(fixtures / "policy.npz")
    pol = rp.load("official")
    pol.reset(d["input"].shape[1])
    for t in range(d["input"].shape[0]):
        np.testing.assert_allclose(pol.step(d["input"][t]), d["output"][t], atol=1e-5, rtol=0)
        np.testing.assert_allclose(pol.h.numpy(), d["gru_hidden"][t], atol=1e-5, rtol=0)


@requires_official
def test_official_policy_flies_in_our_simulator_like_in_l2f(fixtures):
    """End to end: from states[:, 0] only, the published policy in our float64 simulator tracks l2f's episodes."""
    d = load_npz(fixtures / "closedloop.npz")
    params = batch_for(d, d["airframe_index"])
    pol = rp.load("official", dtype=torch.float64)
    x = torch.as_tensor(d["states"][:, 0], dtype=torch.float64)
    pol.reset(x.shape[0])
    prev = mdp.normalized_motors(params, x[:, M])
    steps = d["actions"].shape[1]
    end = np.where(d["first_termination"] < 0, steps, d["first_termination"])
    worst = 0.0
    for t in range(steps):
        a = pol.step(mdp.observe_student(x, prev))
        x, prev = dynamics.step(params, x, a), a
        alive = t < end
        worst = max(worst, np.abs(x.numpy()[alive, :3] - d["states"][alive, t + 1, :3]).max(initial=0.0))
        term = mdp.terminated(params, x).numpy()
        np.testing.assert_array_equal(term[alive], d["terminated"][alive, t])
    assert worst <= 1e-4, f"max position error {worst} m"


def test_default_student_is_shipped_with_provenance_and_hovers():
    """`raptor.policy.load("default")`: the student `raptor distill` made, with its provenance, flying the crazyflie
    and the x500 (hover, 40 episodes each). It is distilled from 53 CPU-trained teachers and fine-tuned once on those
    and 49 more of its failure corners, 102 in all (it flies fresh airframes better than the earlier 721-teacher
    default), so "many teachers" means >= 50 here; the provenance pipeline lists the commands, teachers first."""
    from raptor.commands.evaluate import evaluate

    pol = rp.load("default")
    meta = pol.metadata
    assert meta["name"] == "default" and meta["provenance"]["source"] == "raptor distill"
    pipeline = meta["provenance"]["pipeline"]
    assert meta["teachers"] >= 50 and pipeline[0].startswith("raptor train")
    assert any(c.startswith("raptor distill") for c in pipeline)
    assert sum(p.numel() for p in pol.net.parameters()) == 2084
    for name in ("crazyflie", "x500"):
        m = evaluate("default", name, "hover", episodes=40, seed=2)["overall"]
        assert m["success_rate"] >= 0.85 and m["termination_rate"] <= 0.1, (name, m)


def test_shipping_a_student_as_the_default_writes_its_pipeline_and_evaluation(tmp_path):
    """benchmarks/student_quality.py --ship: the step that makes core/data/policies/default.safetensors from a
    `raptor distill` output: same weights, name "default", the pipeline as provenance, the measured figures as its
    evaluation (the published policy beside it), no path of the training machine; a bad pipeline file is refused
    before any rollout."""
    import argparse
    import importlib.util
    from pathlib import Path

    bench = Path(__file__).resolve().parents[1] / "benchmarks" / "student_quality.py"
    spec = importlib.util.spec_from_file_location("student_quality", bench)
    sq = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sq)

    torch.manual_seed(3)
    net = rp.RaptorPolicyNet()
    meta = default_metadata(source="raptor distill")
    meta["teachers_dir"] = "/somewhere/runs/t64"
    student = tmp_path / "student.safetensors"
    rp.save_policy(student, net, meta)
    fig = {"success": 0.9123456, "terminated": 0.031, "final_error_median": 0.0152, "by_lag": {}}
    results = {"official": {"hover": fig, "recovery": fig, "fresh_teachers_airframes": fig},
               "s": {"hover": fig, "recovery": fig, "fresh_teachers_airframes": fig,
                     "teachers": {"distilled_success": 0.984, "run_success": 0.9}},
               "fresh_teachers": {"trained": 32, "success": 0.974}}
    args = argparse.Namespace(fresh="sampled:200:777", episodes=10, seed=5, fresh_teacher_episodes=50)
    pipeline_file = tmp_path / "pipeline.json"
    pipeline_file.write_text(json.dumps(["raptor train --out t", "raptor distill --teachers t --out s"]))
    out = tmp_path / "default.safetensors"
    sq.ship(str(student), str(out), sq.read_pipeline(str(pipeline_file)), sq.shipped_evaluation(results, "s", args))

    shipped = rp.load(out)
    assert shipped.metadata["name"] == "default" and shipped.metadata["teachers_dir"] == "t64"
    assert shipped.metadata["provenance"]["pipeline"][1].startswith("raptor distill")
    ev = shipped.metadata["evaluation"]
    assert ev["hover"]["success"] == 0.9123 and ev["teachers_hover_success_rate"] == 0.984
    assert ev["like_for_like"]["their_teachers"] == 0.974 and "sampled:200:777" in ev["airframes"]
    for k, v in net.flat_parameters().items():
        assert torch.equal(shipped.net.flat_parameters()[k], v.detach())
    pipeline_file.write_text('{"not": "a list"}')
    with pytest.raises(SystemExit, match="JSON list"):
        sq.read_pipeline(str(pipeline_file))
    with pytest.raises(SystemExit, match="needs --pipeline"):
        sq.read_pipeline(None)


def test_policy_file_round_trip_and_refusals(tmp_path):
    torch.manual_seed(1)
    net = rp.RaptorPolicyNet()
    path = tmp_path / "p.safetensors"
    rp.save_policy(path, net, default_metadata(source="test"))
    pol = rp.load(path)
    obs = np.random.default_rng(0).normal(size=(3, 22)).astype(np.float32)
    pol.reset(3)
    ref, _ = net.step(torch.as_tensor(obs), net.initial_hidden(3))
    np.testing.assert_allclose(pol.step(obs), ref.detach().numpy(), atol=1e-7)
    assert pol.metadata["provenance"]["source"] == "test" and "git_commit" in pol.metadata["provenance"]

    with pytest.raises(PolicyFileError, match="does not exist"):
        rp.load(tmp_path / "missing.safetensors")
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(path.read_bytes()[:200])
    with pytest.raises(PolicyFileError, match="not a (readable )?policy file"):
        rp.load(corrupt)
    with torch.no_grad():
        net.output_layer.bias[0] = float("nan")
    with pytest.raises(PolicyFileError, match="refusing to save.*output_layer.bias"):
        rp.save_policy(tmp_path / "nan.safetensors", net, default_metadata(source="test"))
    assert not list(tmp_path.glob("*nan*"))  # nothing written, no temporary file left
    _write_raw(tmp_path / "nan.safetensors", net, default_metadata(source="test"))  # as another tool might
    with pytest.raises(PolicyFileError, match="output_layer.bias.*NaN"):
        rp.load(tmp_path / "nan.safetensors")
    meta = default_metadata(source="test")
    meta["observation"]["layout"] = "Position.OrientationQuaternion"
    rp.save_policy(tmp_path / "layout.safetensors", rp.RaptorPolicyNet(), meta)
    with pytest.raises(PolicyFileError, match="observation layout"):
        rp.load(tmp_path / "layout.safetensors")
    with pytest.raises(PolicyFileError, match="no policy 'nope'"):
        rp.load("nope")


def test_step_rejects_bad_observations():
    pol = rp.Policy(rp.RaptorPolicyNet(), default_metadata(source="test"))
    pol.reset(2)
    with pytest.raises(InputError, match=r"expected \(B, 22\)"):
        pol.step(np.zeros((2, 18)))
    bad = np.zeros((2, 22))
    bad[0, 3] = np.nan
    h = pol.h.clone()
    with pytest.raises(InputError, match="NaN"):
        pol.step(bad)
    torch.testing.assert_close(pol.h, h)


def _rand_inputs(gen, B):
    q = torch.randn(B, 4, generator=gen)
    q = q / q.norm(dim=-1, keepdim=True)
    return (torch.randn(B, 3, generator=gen) * 0.3, q, torch.randn(B, 3, generator=gen) * 0.3,
            torch.randn(B, 3, generator=gen), torch.rand(B, 4, generator=gen) * 2 - 1)


def test_runner_at_native_rate_is_the_clamped_policy():
    torch.manual_seed(2)
    net = rp.RaptorPolicyNet()
    runner = rp.DeploymentRunner(net, native_every=1)
    runner.reset(4)
    h = net.initial_hidden(4)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for _ in range(20):
            p, q, v, w, prev = _rand_inputs(gen, 4)
            a, native = runner.control(p, q, v, w, prev)
            obs = torch.cat([p, mdp.observe_student(torch.cat([p, q, v, w, torch.zeros(4, 4)], -1), prev)[:, OBS_R],
                             v, w, prev], -1)
            ref, h = net.step(obs, h)
            assert native
            torch.testing.assert_close(a, ref.clamp(-1, 1))


def test_runner_commits_gru_only_at_native_steps_and_averages_history():
    torch.manual_seed(3)
    net = rp.RaptorPolicyNet()
    runner = rp.DeploymentRunner(net, native_every=4)
    runner.reset(2)
    gen = torch.Generator().manual_seed(1)
    h = net.initial_hidden(2)
    prevs = []
    with torch.no_grad():
        for k in range(12):
            p, q, v, w, prev = _rand_inputs(gen, 2)
            prevs = [prev] if k % 4 == 1 or k == 0 else prevs + [prev]
            mean_prev = torch.stack(prevs).mean(0)
            a, native = runner.control(p, q, v, w, prev)
            assert native == (k % 4 == 0)
            from raptor.geometry import rotation_matrix
            obs = torch.cat([p, rotation_matrix(q), v, w, mean_prev], -1)
            ref, h_new = net.step(obs, h)
            torch.testing.assert_close(a, ref.clamp(-1, 1))
            if native:
                h = h_new
            torch.testing.assert_close(runner.h, h)


def test_matrix_to_quaternion_round_trip():
    from raptor.geometry import rotation_matrix
    from raptor.policy.runner import matrix_to_quaternion
    from raptor.sim.mdp import sample_uniform_rotation

    q = sample_uniform_rotation(1000, torch.Generator().manual_seed(0), torch.zeros(1, dtype=torch.float64))
    torch.testing.assert_close(matrix_to_quaternion(rotation_matrix(q)), q)
    json.dumps(default_metadata(source="x"))  # metadata is JSON-serializable


def _write_raw(path, net, meta) -> None:
    """A policy file written without save_policy's checks (another tool's, or an older raptor's)."""
    import json

    from safetensors.torch import save_file

    save_file({k: v.detach().contiguous() for k, v in net.flat_parameters().items()}, str(path),
              metadata={"raptor": json.dumps(meta)})
