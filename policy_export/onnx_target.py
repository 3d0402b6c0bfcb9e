"""`raptor export --target onnx`: the student as an ONNX graph (one 100 Hz step: observation (B, 22), hidden
(B, 16) -> raw action (B, 4), hidden_out (B, 16); initial_hidden (16,) as an output)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from raptor.errors import ConfigError
from raptor.policy.network import PARAMETER_LAYOUT


def export_onnx(policy, out: Path) -> Path:
    try:
        import onnx
        from onnx import TensorProto, helper, numpy_helper
    except ModuleNotFoundError:
        raise ConfigError("the onnx target needs the optional extra: pip install 'raptor-quadrotor[onnx]'") from None
    p = {k: v.detach().cpu().float().numpy() for k, v in policy.net.flat_parameters().items()}
    inits = [numpy_helper.from_array(p[k], k.replace(".", "_")) for k, _ in PARAMETER_LAYOUT]
    inits += [numpy_helper.from_array(np.array([16, 16, 16], np.int64), "split3"),
              numpy_helper.from_array(np.array(1.0, np.float32), "one")]
    N = helper.make_node
    nodes = [
        N("Gemm", ["observation", "input_layer_weight", "input_layer_bias"], ["pre"], transB=1),
        N("Relu", ["pre"], ["x"]),
        N("Gemm", ["x", "gru_weight_ih", "gru_bias_ih"], ["gi"], transB=1),
        N("Gemm", ["hidden", "gru_weight_hh", "gru_bias_hh"], ["gh"], transB=1),
        N("Split", ["gi", "split3"], ["gi_r", "gi_z", "gi_n"], axis=1),
        N("Split", ["gh", "split3"], ["gh_r", "gh_z", "gh_n"], axis=1),
        N("Add", ["gi_r", "gh_r"], ["r_pre"]), N("Sigmoid", ["r_pre"], ["r"]),
        N("Add", ["gi_z", "gh_z"], ["z_pre"]), N("Sigmoid", ["z_pre"], ["z"]),
        N("Mul", ["r", "gh_n"], ["r_gh_n"]), N("Add", ["gi_n", "r_gh_n"], ["n_pre"]), N("Tanh", ["n_pre"], ["n"]),
        N("Mul", ["z", "hidden"], ["zh"]), N("Sub", ["one", "z"], ["one_minus_z"]),
        N("Mul", ["one_minus_z", "n"], ["zn"]), N("Add", ["zh", "zn"], ["hidden_out"]),
        N("Gemm", ["hidden_out", "output_layer_weight", "output_layer_bias"], ["action"], transB=1),
        N("Identity", ["gru_h0"], ["initial_hidden"]),
    ]
    f = TensorProto.FLOAT
    graph = helper.make_graph(
        nodes, "raptor_policy",
        [helper.make_tensor_value_info("observation", f, ["batch", 22]),
         helper.make_tensor_value_info("hidden", f, ["batch", 16])],
        [helper.make_tensor_value_info("action", f, ["batch", 4]),
         helper.make_tensor_value_info("hidden_out", f, ["batch", 16]),
         helper.make_tensor_value_info("initial_hidden", f, [16])],
        inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="raptor")
    model.metadata_props.extend([onnx.StringStringEntryProto(key="raptor", value=json.dumps(policy.metadata))])
    onnx.checker.check_model(model)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "raptor_policy.onnx"
    onnx.save(model, str(path))
    return path
