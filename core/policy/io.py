"""Policy files: safetensors weights with JSON metadata in the header, and the published RAPTOR checkpoint.

Our format (`*.safetensors`): the nine tensors of `PARAMETER_LAYOUT` (float32), and `__metadata__["raptor"]`, a
JSON object with the architecture, observation layout and conventions, dt, and provenance. Loading validates
names, shapes, dtypes, finiteness and metadata, and refuses a mismatched file with a message that says why.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import struct
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import torch

from raptor.conventions import CONVENTIONS_VERSION, DT_NATIVE_S, STUDENT_OBS_LAYOUT
from raptor.errors import PolicyFileError
from raptor.fileio import atomic_write
from raptor.policy.network import HIDDEN_DIM, INPUT_DIM, OUTPUT_DIM, PARAMETER_LAYOUT, RaptorPolicyNet

POLICY_FORMAT = "raptor-policy"
POLICY_VERSION = 1
ARCHITECTURE = {"type": "dense-relu/gru/dense", "input_dim": INPUT_DIM, "hidden_dim": HIDDEN_DIM,
                "output_dim": OUTPUT_DIM, "gru_gate_layout": "pytorch-rzn", "learned_initial_state": True,
                "output_activation": "identity"}


def git_commit() -> str:
    """The commit of the code that runs: RAPTOR_GIT_COMMIT where set (an installed snapshot of a checkout, which has
    no .git of its own), else the checkout's HEAD, else "unknown"."""
    if os.environ.get("RAPTOR_GIT_COMMIT"):
        return os.environ["RAPTOR_GIT_COMMIT"]
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def default_metadata(source: str, config: dict | None = None, **extra: Any) -> dict:
    cfg = json.dumps(config or {}, sort_keys=True)
    return {
        "format": POLICY_FORMAT, "version": POLICY_VERSION, "architecture": ARCHITECTURE,
        "observation": {"layout": STUDENT_OBS_LAYOUT, "dim": INPUT_DIM,
                        "frame": "FLU world z-up; q wxyz body->world; angular velocity body; previous action"},
        "action": {"dim": OUTPUT_DIM, "order": "front_right,back_right,back_left,front_left", "range": [-1, 1]},
        "conventions_version": CONVENTIONS_VERSION, "dt_s": DT_NATIVE_S,
        "provenance": {"source": source, "config_hash": hashlib.sha256(cfg.encode()).hexdigest()[:16],
                       "git_commit": git_commit(), "date": _dt.datetime.now(_dt.timezone.utc).isoformat()},
        **extra,
    }


# The thrust-to-weight range of RAPTOR's sampler (spec 3.1): the envelope of a policy whose file does not say its own
# (the published policy, students of the reference's airframes).
RAPTOR_THRUST_TO_WEIGHT = (1.5, 5.0)


def training_envelope(metadata: dict) -> tuple[float, float]:
    """The thrust-to-weight range a policy was trained on: its file's metadata["training_envelope"]["thrust_to_weight"]
    (raptor distill writes its teachers' range), else RAPTOR's. Malformed values fall back to RAPTOR's."""
    tw = (metadata.get("training_envelope") or {}).get("thrust_to_weight") if isinstance(metadata, dict) else None
    if not (isinstance(tw, (list, tuple)) and len(tw) == 2 and all(isinstance(v, (int, float)) for v in tw)):
        return RAPTOR_THRUST_TO_WEIGHT
    lo, hi = float(tw[0]), float(tw[1])
    return (lo, hi) if 0 < lo <= hi < 100 else RAPTOR_THRUST_TO_WEIGHT


def save_policy(path: str | os.PathLike, net: RaptorPolicyNet, metadata: dict) -> None:
    """Write a policy file atomically (temporary file, then rename)."""
    from safetensors.torch import save_file

    tensors = {k: v.detach().to(torch.float32).contiguous().cpu() for k, v in net.flat_parameters().items()}
    bad = [k for k, v in tensors.items() if not torch.isfinite(v).all()]
    if bad:
        raise PolicyFileError(f"refusing to save {path}: non-finite weights in {', '.join(bad)}")
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata={"raptor": json.dumps(metadata)}))


def check_metadata(meta: dict, where: str) -> None:
    if meta.get("format") != POLICY_FORMAT:
        raise PolicyFileError(f"{where}: not a raptor policy (metadata format {meta.get('format')!r})")
    if meta.get("version") != POLICY_VERSION:
        raise PolicyFileError(f"{where}: policy file version {meta.get('version')!r} is not supported "
                              f"(this raptor reads version {POLICY_VERSION})")
    if meta.get("architecture") != ARCHITECTURE:
        raise PolicyFileError(f"{where}: architecture {meta.get('architecture')} does not match {ARCHITECTURE}")
    obs = meta.get("observation", {})
    if obs.get("layout") != STUDENT_OBS_LAYOUT or obs.get("dim") != INPUT_DIM:
        raise PolicyFileError(f"{where}: observation layout {obs.get('layout')!r} (dim {obs.get('dim')}) does not "
                              f"match this simulator's {STUDENT_OBS_LAYOUT!r} (dim {INPUT_DIM})")
    if abs(float(meta.get("dt_s", -1)) - DT_NATIVE_S) > 1e-12:
        raise PolicyFileError(f"{where}: policy trained at dt {meta.get('dt_s')} s, this simulator steps "
                              f"{DT_NATIVE_S} s")


def net_from_tensors(tensors: dict[str, np.ndarray | torch.Tensor], where: str) -> RaptorPolicyNet:
    """Build a network from named tensors, checking names, shapes, dtypes and finiteness."""
    expected = dict(PARAMETER_LAYOUT)
    missing = sorted(set(expected) - set(tensors))
    extra = sorted(set(tensors) - set(expected))
    if missing or extra:
        raise PolicyFileError(f"{where}: tensors do not match the 2084-parameter student (missing {missing}, "
                              f"unexpected {extra})")
    net = RaptorPolicyNet()
    state = {}
    for name, shape in PARAMETER_LAYOUT:
        t = torch.as_tensor(np.asarray(tensors[name]) if not isinstance(tensors[name], torch.Tensor) else tensors[name])
        if tuple(t.shape) != shape:
            raise PolicyFileError(f"{where}: tensor '{name}' has shape {tuple(t.shape)}, expected {shape}")
        if not t.is_floating_point():
            raise PolicyFileError(f"{where}: tensor '{name}' has dtype {t.dtype}, expected a float type")
        if not bool(torch.isfinite(t).all()):
            raise PolicyFileError(f"{where}: tensor '{name}' contains NaN or inf")
        state[name] = t.to(torch.float32)
    net.load_state_dict(state)
    return net


def load_policy_file(path: str | os.PathLike) -> tuple[RaptorPolicyNet, dict]:
    """Load and validate one of our policy files."""
    from safetensors import SafetensorError
    from safetensors.torch import load as load_bytes

    path = Path(path)
    if not path.is_file():
        raise PolicyFileError(f"policy file '{path}' does not exist")
    try:  # read here, not by path in Rust: any path Python can open works (also non-UTF-8 names)
        data = path.read_bytes()
    except OSError as e:
        raise PolicyFileError(f"policy file '{path}' cannot be read: {e.strerror or e}") from None
    what = ("a raptor policy (.safetensors from raptor distill or raptor.policy.save), an RLtools checkpoint (.tar) "
            "or the published checkpoint (.h5)")
    if len(data) < 8 or struct.unpack("<Q", data[:8])[0] > len(data) - 8:
        raise PolicyFileError(f"'{path}' is not a policy file: expected {what}"
                              + (" (this one is cut short or empty)" if path.suffix == ".safetensors" else ""))
    try:
        (n,) = struct.unpack("<Q", data[:8])
        header = json.loads(data[8:8 + n]).get("__metadata__") or {}
        tensors = load_bytes(data)
    except (SafetensorError, struct.error, ValueError, RuntimeError, RecursionError, AttributeError):
        raise PolicyFileError(f"'{path}' is not a readable policy file: its safetensors header or tensors are "
                              f"damaged; expected {what}") from None
    if "raptor" not in header:
        raise PolicyFileError(f"policy file '{path}' has no raptor metadata; write it with raptor.policy.save")
    try:
        meta = json.loads(header["raptor"])
    except (json.JSONDecodeError, RecursionError, TypeError) as e:
        raise PolicyFileError(f"policy file '{path}': metadata is not valid JSON ({str(e)[:120]})") from None
    if not isinstance(meta, dict):
        raise PolicyFileError(f"policy file '{path}': metadata is not a JSON object")
    check_metadata(meta, f"policy file '{path}'")
    return net_from_tensors(tensors, f"policy file '{path}'"), meta


# ----------------------------------------------------------------------------------------------------------------
# The published RAPTOR checkpoint (PyPI `foundation-policy`, blob/checkpoint.h5)


def official_checkpoint_path() -> Path:
    try:
        from importlib import resources

        return Path(str(resources.files("foundation_policy").joinpath("blob", "checkpoint.h5")))
    except ModuleNotFoundError:
        raise PolicyFileError("the published RAPTOR policy needs the optional extra: "
                              "pip install 'raptor-quadrotor[official]' (foundation-policy and h5py)") from None


def load_official_checkpoint(path: str | os.PathLike | None = None,
                             check_example: bool = True) -> tuple[RaptorPolicyNet, dict]:
    """Import the published checkpoint.h5 (rl_tools layout) into our network; verify its stored example."""
    try:
        import h5py
    except ModuleNotFoundError:
        raise PolicyFileError("reading the published checkpoint needs h5py: pip install h5py") from None
    path = Path(path) if path is not None else official_checkpoint_path()
    try:
        with h5py.File(path, "r") as f:
            layers = f["actor"]["layers"]

            def p(layer: str, name: str) -> np.ndarray:
                return layers[layer][name]["parameters"][()]

            tensors = {
                "input_layer.weight": p("0", "weights"), "input_layer.bias": p("0", "biases").reshape(-1),
                "gru.weight_ih": p("1", "weights_input"), "gru.weight_hh": p("1", "weights_hidden"),
                "gru.bias_ih": p("1", "biases_input").reshape(-1), "gru.bias_hh": p("1", "biases_hidden").reshape(-1),
                "gru.h0": p("1", "initial_hidden_state").reshape(-1),
                "output_layer.weight": p("2", "weights"), "output_layer.bias": p("2", "biases").reshape(-1),
            }
            acts = [layers[str(i)].attrs.get("activation_function", b"") for i in (0, 2)]
            example_in, example_out = f["example"]["input"][()], f["example"]["output"][()]
            actor_meta = layers.parent.attrs.get("meta")
    except (OSError, KeyError) as e:
        raise PolicyFileError(f"'{path}' is not a readable RAPTOR checkpoint ({e})") from None
    acts = [a.decode() if isinstance(a, bytes) else str(a) for a in acts]
    if acts != ["RELU", "IDENTITY"]:
        raise PolicyFileError(f"'{path}': unexpected activations {acts}, expected RELU then IDENTITY")
    net = net_from_tensors(tensors, f"checkpoint '{path}'")
    if check_example:
        with torch.no_grad():
            out, _ = net(torch.as_tensor(example_in, dtype=torch.float32))
        err = float(np.abs(out.numpy() - example_out).max())
        if err > 1e-5:
            raise PolicyFileError(f"'{path}': the network does not reproduce the checkpoint's example (max error "
                                  f"{err:.2e})")
    meta = default_metadata(source=f"foundation-policy 1.0.2 checkpoint.h5 ({path.name})",
                            upstream_meta=actor_meta.decode() if isinstance(actor_meta, bytes) else actor_meta)
    return net, meta
