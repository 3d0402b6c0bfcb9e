"""The RLtools checkpoint format (`policy.tar`), the file PX4's own RAPTOR module (`mc_raptor`) loads.

A ustar archive of `meta` (text lines `key: value`) and `data` (raw little-endian float32, row-major) entries:

    actor/meta                                   checkpoint_name: NAME / type: sequential
    actor/layers/0/meta, .../weights|biases      dense 16 x 22, RELU
    actor/layers/1/meta, .../weights_input ...   gru: weights_input 48 x 16, weights_hidden 48 x 16, biases_input 48,
                                                 biases_hidden 48, initial_hidden_state 16 (PyTorch's [r | z | n])
    actor/layers/2/meta, .../weights|biases      dense 4 x 16, IDENTITY
    example/input, example/output                500 x 2 x 22 and 500 x 2 x 4: two sequences from h0; mc_raptor
                                                 replays them and refuses the file unless mean |diff| < 1e-5
    raptor/metadata                              (ours only) the policy's metadata as JSON; RLtools never reads it

Each tensor is `<path>/parameters/meta` (`type: tensor`, `dtype: float32`, `num_dims`, `dim_i`) and
`<path>/parameters/data` under a layer, `<path>/meta` and `<path>/data` for the example. RLtools reads a meta entry
into a 100-byte buffer, so every meta entry written here stays below that. The layout, entry order and header
fields follow the published px4-blob `policy.tar` (RLtools' own writer: mode 0644, uid/gid 1000, user/group, mtime 0).
"""

from __future__ import annotations

import io
import json
import math
import re
import tarfile
from pathlib import Path

import numpy as np
import torch

from raptor.errors import PolicyFileError
from raptor.fileio import atomic_write
from raptor.policy.io import net_from_tensors
from raptor.policy.network import HIDDEN_DIM, INPUT_DIM, OUTPUT_DIM, RaptorPolicyNet

EXAMPLE_STEPS, EXAMPLE_BATCH = 500, 2  # the example shape mc_raptor's compiled type expects (px4-blob policy.h)
EXAMPLE_TOLERANCE = 1e-5  # mc_raptor: mean |difference| below this, else it refuses the file
META_MAX_BYTES = 99  # RLtools reads meta entries into char[100] and terminates them
CHECKPOINT_NAME_MAX = 60

# (tar path, our parameter name, shape) in the archive's order
TENSORS = (
    ("actor/layers/0/weights/parameters", "input_layer.weight", (HIDDEN_DIM, INPUT_DIM)),
    ("actor/layers/0/biases/parameters", "input_layer.bias", (HIDDEN_DIM,)),
    ("actor/layers/1/weights_input/parameters", "gru.weight_ih", (3 * HIDDEN_DIM, HIDDEN_DIM)),
    ("actor/layers/1/biases_input/parameters", "gru.bias_ih", (3 * HIDDEN_DIM,)),
    ("actor/layers/1/weights_hidden/parameters", "gru.weight_hh", (3 * HIDDEN_DIM, HIDDEN_DIM)),
    ("actor/layers/1/biases_hidden/parameters", "gru.bias_hh", (3 * HIDDEN_DIM,)),
    ("actor/layers/1/initial_hidden_state/parameters", "gru.h0", (HIDDEN_DIM,)),
    ("actor/layers/2/weights/parameters", "output_layer.weight", (OUTPUT_DIM, HIDDEN_DIM)),
    ("actor/layers/2/biases/parameters", "output_layer.bias", (OUTPUT_DIM,)),
)
LAYER_META = {0: {"activation_function": "RELU", "type": "dense"}, 1: {"type": "gru"},
              2: {"activation_function": "IDENTITY", "type": "dense"}}


def checkpoint_name(text: str) -> str:
    """A name RLtools and mc_raptor can carry: [A-Za-z0-9._/:@+-], at most 60 characters (hostile text dropped)."""
    name = re.sub(r"[^A-Za-z0-9._/:@+-]+", "_", str(text)).strip("_")[:CHECKPOINT_NAME_MAX]
    return name or "raptor"


def _meta_text(fields: dict[str, object]) -> bytes:
    text = "".join(f"{k}: {v}\n" for k, v in fields.items()).encode()
    if len(text) > META_MAX_BYTES:
        raise PolicyFileError(f"RLtools meta entry too long ({len(text)} > {META_MAX_BYTES} bytes): {text[:60]!r}")
    return text


def _tensor_meta(shape: tuple[int, ...]) -> bytes:
    return _meta_text({"type": "tensor", "dtype": "float32", "num_dims": len(shape),
                       **{f"dim_{i}": d for i, d in enumerate(shape)}})


def write_tar(path: str | Path, net: RaptorPolicyNet, name: str, example_input: np.ndarray,
              metadata: dict | None = None) -> dict:
    """Write `net` as an RLtools checkpoint with the example `example_input` (500, 2, 22) replayed by the network
    itself (float32, from h0); returns {"checkpoint_name", "example_max_abs"} (0: the example is the net's own)."""
    x = np.ascontiguousarray(example_input, dtype=np.float32)
    if x.shape != (EXAMPLE_STEPS, EXAMPLE_BATCH, INPUT_DIM):
        raise PolicyFileError(f"the RLtools example must be {EXAMPLE_STEPS} x {EXAMPLE_BATCH} x {INPUT_DIM} (the "
                              f"shape mc_raptor's compiled type expects), got {x.shape}")
    params = {k: v.detach().cpu().to(torch.float32).numpy() for k, v in net.flat_parameters().items()}
    with torch.no_grad():
        y, _ = net.float().cpu()(torch.from_numpy(x))
    y = y.numpy().astype(np.float32)
    cname = checkpoint_name(name)
    entries: list[tuple[str, bytes]] = [("actor/meta", _meta_text({"checkpoint_name": cname, "type": "sequential"}))]
    layer = -1
    for tar_path, key, shape in TENSORS:
        i = int(tar_path.split("/")[2])
        if i != layer and layer >= 0:
            entries.append((f"actor/layers/{layer}/meta", _meta_text(LAYER_META[layer])))
        layer = i
        entries.append((f"{tar_path}/meta", _tensor_meta(shape)))
        entries.append((f"{tar_path}/data", np.ascontiguousarray(params[key], "<f4").tobytes()))
    entries.append((f"actor/layers/{layer}/meta", _meta_text(LAYER_META[layer])))
    for which, arr in (("input", x), ("output", y)):
        entries.append((f"example/{which}/meta", _tensor_meta(arr.shape)))
        entries.append((f"example/{which}/data", np.ascontiguousarray(arr, "<f4").tobytes()))
    entries.append(("raptor/metadata", json.dumps(metadata or {}, sort_keys=True).encode()))

    def write(tmp: str) -> None:
        with tarfile.open(tmp, "w", format=tarfile.USTAR_FORMAT) as tf:
            for entry, data in entries:
                info = tarfile.TarInfo(entry)
                info.size, info.mode, info.mtime = len(data), 0o644, 0
                info.uid = info.gid = 1000
                info.uname, info.gname = "user", "group"
                tf.addfile(info, io.BytesIO(data))

    atomic_write(Path(path), write)
    return {"checkpoint_name": cname, "example_max_abs": 0.0}


def _parse_meta(text: bytes, where: str) -> dict[str, str]:
    try:
        lines = text.decode("utf-8").splitlines()
    except UnicodeDecodeError:
        raise PolicyFileError(f"{where}: not text") from None
    out = {}
    for line in lines:
        if ": " in line:
            k, v = line.split(": ", 1)
            out[k.strip()] = v.strip()
    return out


def read_tar(path: str | Path) -> tuple[RaptorPolicyNet, dict, dict]:
    """(network, our metadata or {}, facts {"checkpoint_name", "example_mean_abs", "example_max_abs"}) of an RLtools
    RAPTOR checkpoint; a file that is not one (not a tar, cut short, another network, another dtype, no example, an
    example the network does not replay) is refused with a PolicyFileError that says what is wrong."""
    path = Path(path)
    where = f"RLtools checkpoint '{path}'"
    if not path.is_file():
        raise PolicyFileError(f"policy file '{path}' does not exist")
    try:
        with tarfile.open(path, "r:") as tf:
            members = {m.name: m for m in tf.getmembers() if m.isfile()}
            files = {}
            for n, m in members.items():
                f = tf.extractfile(m)
                files[n] = f.read() if f is not None else b""
                if len(files[n]) != m.size:
                    raise PolicyFileError(f"{where} is cut short (entry {n}: {len(files[n])} of {m.size} bytes)")
    except (tarfile.TarError, EOFError) as e:
        raise PolicyFileError(f"{where} is not a readable tar archive ({str(e)[:80] or type(e).__name__}): a cut or "
                              "damaged file; export it again") from None
    except OSError as e:
        raise PolicyFileError(f"{where} cannot be read: {e.strerror or e}") from None

    def need(entry: str) -> bytes:
        if entry not in files:
            raise PolicyFileError(f"{where} has no '{entry}' entry: not a RAPTOR checkpoint (22-16-GRU16-4) of "
                                  "RLtools, or cut short")
        return files[entry]

    def tensor(base: str, shape: tuple[int, ...] | None, ndim: int | None = None) -> np.ndarray:
        meta = _parse_meta(need(f"{base}/meta"), f"{where}: {base}/meta")
        if meta.get("type") != "tensor":
            raise PolicyFileError(f"{where}: {base} is of type {meta.get('type')!r}, not tensor")
        if meta.get("dtype") != "float32":
            raise PolicyFileError(f"{where}: {base} has dtype {meta.get('dtype')!r}; RLtools RAPTOR checkpoints are "
                                  "float32")
        try:
            dims = tuple(int(meta[f"dim_{i}"]) for i in range(int(meta["num_dims"])))
        except (KeyError, ValueError):
            raise PolicyFileError(f"{where}: {base}/meta has no valid num_dims/dim_i") from None
        if (shape is not None and dims != shape) or (ndim is not None and len(dims) != ndim):
            raise PolicyFileError(f"{where}: {base} has shape {dims}, expected "
                                  f"{shape if shape is not None else f'{ndim} dimensions'} (the 22-16-GRU16-4 "
                                  "RAPTOR student)")
        data = need(f"{base}/data")
        if len(data) != 4 * math.prod(dims):
            raise PolicyFileError(f"{where}: {base}/data holds {len(data)} bytes, its meta says "
                                  f"{4 * math.prod(dims)} (float32 {dims})")
        return np.frombuffer(data, "<f4").reshape(dims).astype(np.float32)

    actor = _parse_meta(need("actor/meta"), f"{where}: actor/meta")
    if actor.get("type") != "sequential" or not actor.get("checkpoint_name"):
        raise PolicyFileError(f"{where}: actor/meta must say type: sequential and carry a checkpoint_name "
                              "(mc_raptor refuses a file without it)")
    for i, want in LAYER_META.items():
        got = _parse_meta(need(f"actor/layers/{i}/meta"), f"{where}: layer {i}")
        if any(got.get(k) != v for k, v in want.items()):
            raise PolicyFileError(f"{where}: layer {i} is {got}, expected {want} (the 22-16-GRU16-4 RAPTOR student)")
    if "actor/layers/3/meta" in files:
        raise PolicyFileError(f"{where}: the actor has more than 3 layers; not the 22-16-GRU16-4 RAPTOR student")

    net = net_from_tensors({key: tensor(p, shape) for p, key, shape in TENSORS}, where)
    if "example/input/meta" not in files or "example/output/meta" not in files:
        raise PolicyFileError(f"{where} has no example (example/input, example/output): mc_raptor checks every file "
                              "against its example and refuses one without")
    x, y = tensor("example/input", None, 3), tensor("example/output", None, 3)
    if x.shape[2] != INPUT_DIM or y.shape != x.shape[:2] + (OUTPUT_DIM,):
        raise PolicyFileError(f"{where}: example shapes {x.shape} -> {y.shape}, expected T x B x {INPUT_DIM} -> "
                              f"T x B x {OUTPUT_DIM}")
    with torch.no_grad():
        out, _ = net(torch.from_numpy(x))
    diff = np.abs(out.numpy() - y)
    facts = {"checkpoint_name": actor["checkpoint_name"], "example_mean_abs": float(diff.mean()),
             "example_max_abs": float(diff.max())}
    if not facts["example_mean_abs"] < EXAMPLE_TOLERANCE:
        raise PolicyFileError(f"{where}: the network does not replay its stored example (mean |difference| "
                              f"{facts['example_mean_abs']:.2e} >= {EXAMPLE_TOLERANCE:g}); mc_raptor would refuse it")
    ours: dict = {}
    if "raptor/metadata" in files:
        try:
            ours = json.loads(files["raptor/metadata"])
        except (ValueError, RecursionError):
            raise PolicyFileError(f"{where}: raptor/metadata is not valid JSON") from None
        if not isinstance(ours, dict):
            raise PolicyFileError(f"{where}: raptor/metadata is not a JSON object")
    return net, ours, facts
