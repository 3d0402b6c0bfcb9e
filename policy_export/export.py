"""`raptor export`: a policy as C headers + the portable C core (generic), or as ONNX.

Everything the C side sees is generated from one schema, `raptor.policy.network.PARAMETER_LAYOUT`: the
initializer of `raptor_weights_t` lists the tensors in that order (tests/test_export.py pins the C struct to it).

generic writes into --out:
  raptor_policy_weights.h   the 2084 parameters as `static const raptor_weights_t RAPTOR_WEIGHTS`, a provenance
                            comment, and a stored self-test sequence (inputs, expected raw outputs)
  raptor_test_sequence.h    a fixed observation sequence at --rate-hz (native step every rate/100 calls) for
                            the host/QEMU parity harness
  raptor_policy.c/.h, test_main.c, Makefile, qemu/   the C core and its builds (copied from raptor.firmware)
  README.md                 how to build, run and integrate
onnx writes raptor_policy.onnx: inputs observation (B, 22), hidden (B, 16); outputs action (B, 4, raw),
hidden_out (B, 16), initial_hidden (16,).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import shutil
import tempfile
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from raptor.conventions import CONVENTIONS_VERSION
from raptor.errors import ConfigError
from raptor.fileio import check_writable_folder, file_mode
from raptor.policy.network import PARAMETER_LAYOUT
from raptor.policy_export.core_policy import file_sha256, source_file

TARGETS = ("generic", "onnx", "crazyflie", "px4", "betaflight", "rltools")
SELF_TEST_STEPS, SELF_TEST_BATCH = 8, 2
SEQUENCE_STEPS = 240
FIRMWARE_FILES = ("raptor_policy.c", "raptor_policy.h", "raptor_schema.h", "test_main.c", "Makefile", "qemu/startup.c",
                  "qemu/stm32f405.ld", "qemu/mps2_an500.ld", "hil/hil_device.c", "hil/hil_protocol.c",
                  "hil/hil_protocol.h", "hil/hil_port.h", "hil/port_host.c", "hil/port_stm32.c", "hil/fuzz_main.c")


def _c_floats(a: np.ndarray) -> str:
    """A float32 array as a nested C initializer; 9 significant digits round-trip float32 exactly."""
    a = np.asarray(a, dtype=np.float32)
    if a.ndim == 1:
        return "{" + ", ".join(f"{float(v):.8e}f" for v in a) + "}"
    return "{" + ",\n ".join(_c_floats(r) for r in a) + "}"


def flight_observations(policy, steps: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """States (T, 17) and raw actions (T, 4) of the policy hovering a crazyflie in our simulator."""
    from raptor.runtime import run_episodes
    from raptor.sim.airframe import named_airframe
    from raptor.sim.env import BatchedQuadrotorEnv, EnvConfig

    # no termination (a crash box of 1000 km): the sequence has `steps` states whatever the policy does
    env = BatchedQuadrotorEnv([named_airframe("crazyflie")], 1, EnvConfig(target="hover", crash_box_m=1e6), seed=seed)
    states, actions = [], []

    class Record:  # the state before each step and the action applied in it
        def observe(self, t, env, obs, alive):
            states.append(env.state[0].clone())

        def after_step(self, t, env, action, reward, terminated, alive):
            actions.append(action[0].clone())

    run_episodes(policy, env, steps, hooks=[Record()], trajectories=False)
    return torch.stack(states).numpy(), torch.stack(actions).numpy()


def self_test_sequence(policy, steps: int = SELF_TEST_STEPS, batch: int = SELF_TEST_BATCH):
    """Network inputs (T, B, 22) from real flights and the float32 torch outputs (T, B, 4), h0 at step 0."""
    from raptor.geometry import rotation_matrix

    inputs = []
    for b in range(batch):
        states, actions = flight_observations(policy, steps, seed=100 + b)
        s = torch.as_tensor(states)
        prev = torch.cat([torch.zeros(1, 4), torch.as_tensor(actions[:-1])])
        inputs.append(torch.cat([s[:, 0:3], rotation_matrix(s[:, 3:7]), s[:, 7:10], s[:, 10:13], prev], -1))
    x = torch.stack(inputs, 1).float()
    with torch.no_grad():
        y, _ = policy.net.float()(x)
    return x.numpy(), y.numpy()


def parity_sequence(policy, rate_hz: int, steps: int = SEQUENCE_STEPS, seed: int = 7, nan_step: int | None = 50):
    """A fixed sequence at rate_hz: timestamps (T,) ns, observations (T, 17) [p, q, v, w, previous action].

    Native states come from a hover flight; calls between native steps perturb them slightly; step 50 carries a
    NaN (the guard must return the safe action and the next valid call recover); nan_step=None omits it."""
    per = rate_hz // 100
    states, actions = flight_observations(policy, steps // per + 2, seed)
    rng = np.random.default_rng(seed)
    obs = np.zeros((steps, 17), np.float32)
    for t in range(steps):
        k = t // per
        s = states[k].astype(np.float64)
        if t % per:
            s = s + rng.normal(0, 0.002, 17) * np.r_[np.ones(3), np.zeros(4), np.ones(6), np.zeros(4)]
        prev = np.clip(actions[k - 1] if k > 0 else np.zeros(4), -1, 1) + rng.normal(0, 0.01, 4)
        obs[t] = np.r_[s[0:3], s[3:7], s[7:10], s[10:13], prev]
    if nan_step is not None:
        obs[nan_step, 2] = np.nan
    timestamps = (np.arange(steps, dtype=np.uint64) * np.uint64(1_000_000_000 // rate_hz)) + np.uint64(10**9)
    return timestamps, obs


# Metadata (provenance, names, paths) is text from users and training machines: it reaches C only through these two
# functions, never raw. A string literal holds it exactly (every byte outside printable ASCII, and \\ " ?, escaped:
# no trigraph, no line splice); a comment gets a one-line, printable ASCII digest in which no comment can end or
# begin. C99 requires compilers to accept 4,095 characters in a literal (-pedantic warns past it): longer text is cut
# and says so; the policy file keeps the whole of it.
C_STRING_MAX_BYTES = 3500
C_COMMENT_MAX_CHARS = 400


def c_string_literal(text: str, max_bytes: int = C_STRING_MAX_BYTES) -> str:
    """`text` as a C string literal (adjacent literals of at most ~76 characters, joined by macro continuations)."""
    data = text.encode("utf-8")
    if len(data) > max_bytes:
        data = data[:max_bytes] + f"... [cut at {max_bytes} of {len(data)} bytes]".encode()
    pieces, cur = [], ""
    for b in data:
        ch = chr(b)
        if ch in '\\"?':
            esc = "\\" + ch
        elif ch == "\n":
            esc = "\\n"
        elif 0x20 <= b < 0x7F:
            esc = ch
        else:
            esc = f"\\{b:03o}"  # octal: exactly three digits, so a following digit is never swallowed
        if len(cur) + len(esc) > 76:
            pieces.append(cur)
            cur = ""
        cur += esc
    pieces.append(cur)
    return " \\\n    ".join(f'"{p}"' for p in pieces)


def c_comment_text(text: str, max_chars: int = C_COMMENT_MAX_CHARS) -> str:
    """`text` made safe inside a /* */ comment: one line of printable ASCII, no comment delimiter, no trigraph."""
    out = "".join(c if 0x20 <= ord(c) < 0x7F else (f"\\u{ord(c):04x}" if ord(c) < 0x10000 else "?")
                  for c in text.replace("\n", " ").replace("\r", " ").replace("\t", " "))
    while "*/" in out or "/*" in out or "??" in out:
        out = out.replace("*/", "* /").replace("/*", "/ *").replace("??", "? ?")
    if len(out) > max_chars:
        out = out[: max_chars - 5].rstrip("\\") + " ..."
    return out


def heading_initializer(policy) -> str:
    """The policy's heading governor as a raptor_heading_t initializer (enabled 0 where the file names none)."""
    gov = policy.governor
    if gov is None:
        return "{0u, 1.0f, 0.0f, 1.0f, 0.0f} /* no heading governor: the network sees the world frame */"
    consts = ", ".join(f"{float(np.float32(v)):.8e}f" for v in gov.constants())
    return f"{{1u, {consts}}} /* {gov.rate_rad_s:g} rad/s, lead {gov.lead_rad:g} rad */"


def lead_initializer(policy) -> str:
    """The policy's setpoint-acceleration lead as a raptor_lead_t initializer (enabled 0 where it has none)."""
    if policy.lead is None:
        return "{0u, 0.0f, 0.0f} /* no lead: acceleration setpoints are ignored */"
    inv, cap = policy.lead.constants()
    return f"{{1u, {inv:.8e}f, {cap:.8e}f}} /* a_des / {policy.lead.gain_s2:g} s^-2, at most {cap:g} m */"


def weights_header(policy, source: Path | None, policy_name: str) -> str:
    params = {k: v.detach().cpu().float().numpy() for k, v in policy.net.flat_parameters().items()}
    x, y = self_test_sequence(policy)
    prov = json.dumps(policy.metadata.get("provenance", {}), sort_keys=True)
    sha = file_sha256(source)
    body = ",\n".join(f"/* {name} {shape} */\n{_c_floats(params[name])}" for name, shape in PARAMETER_LAYOUT)
    return f"""/* Generated by `raptor export` from one schema (raptor.policy.network.PARAMETER_LAYOUT). Do not edit.
 * policy: {c_comment_text(policy_name, 120)} ({c_comment_text(policy.name, 120)})
 * source file sha256: {sha}
 * provenance (digest; exact text in RAPTOR_POLICY_PROVENANCE_JSON): {c_comment_text(prov, 240)}
 * conventions: {CONVENTIONS_VERSION}; observation [p, R(q) row-major, v, w, previous action];
 * motor order FR, BR, BL, FL
 * exported: {_dt.datetime.now(_dt.timezone.utc).isoformat()}
 */
#ifndef RAPTOR_POLICY_WEIGHTS_H
#define RAPTOR_POLICY_WEIGHTS_H
#include "raptor_policy.h"

/* Where these weights came from, as string constants (escaped; the policy file's metadata holds the full text). */
#define RAPTOR_POLICY_NAME {c_string_literal(policy.name, 200)}
#define RAPTOR_POLICY_SOURCE_SHA256 "{sha}"
#define RAPTOR_POLICY_PROVENANCE_JSON {c_string_literal(prov)}

static const raptor_weights_t RAPTOR_WEIGHTS = {{
{body}
}};

/* The heading governor of the policy file (metadata deployment.heading; raptor.policy.heading): pass it to
 * raptor_policy_set_heading after raptor_policy_init. */
static const raptor_heading_t RAPTOR_HEADING = {heading_initializer(policy)};
static const raptor_lead_t RAPTOR_LEAD = {lead_initializer(policy)};

#ifndef RAPTOR_NO_SELF_TEST_DATA
/* Self-test: raw network outputs for these inputs, GRU state h0 at step 0 (max error allowed 1e-5). */
#define RAPTOR_SELF_TEST_STEPS {x.shape[0]}u
#define RAPTOR_SELF_TEST_BATCH {x.shape[1]}u
static const float raptor_self_test_input[{x.shape[0]}][{x.shape[1]}][22] = {_c_floats(x)};
static const float raptor_self_test_output[{x.shape[0]}][{x.shape[1]}][4] = {_c_floats(y)};
#endif
#endif /* RAPTOR_POLICY_WEIGHTS_H */
"""


def sequence_header(timestamps: np.ndarray, obs: np.ndarray, rate_hz: int) -> str:
    def c_float(v: float) -> str:
        return "NAN" if np.isnan(v) else f"{float(v):.8e}f"

    rows = ",\n".join("{" + ", ".join(c_float(v) for v in row) + "}" for row in obs)
    ts = ", ".join(f"{int(t)}ull" for t in timestamps)
    return f"""/* Generated by `raptor export`: a fixed observation sequence at {rate_hz} Hz for the parity harness. */
#ifndef RAPTOR_TEST_SEQUENCE_H
#define RAPTOR_TEST_SEQUENCE_H
#include <math.h>
#include <stdint.h>
#define RAPTOR_SEQ_STEPS {len(obs)}u
#define RAPTOR_SEQ_NATIVE_EVERY {rate_hz // 100}u
#define RAPTOR_SEQ_INTERVAL_NS {1_000_000_000 // rate_hz}ull
static const uint64_t raptor_seq_timestamp_ns[{len(obs)}] = {{{ts}}};
static const float raptor_seq_obs[{len(obs)}][17] = {{
{rows}}};
#endif
"""


def export_generic(policy, policy_name: str, out: Path, rate_hz: int) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    fw = resources.files("raptor.firmware")
    written = []
    for name in FIRMWARE_FILES:
        dst = out / name
        dst.parent.mkdir(parents=True, exist_ok=True)
        with fw.joinpath(name).open("rb") as src, open(dst, "wb") as f:
            shutil.copyfileobj(src, f)
        written.append(dst)
    (out / "raptor_policy_weights.h").write_text(weights_header(policy, source_file(policy_name), policy_name))
    ts, obs = parity_sequence(policy, rate_hz)
    (out / "raptor_test_sequence.h").write_text(sequence_header(ts, obs, rate_hz))
    np.savez(out / "raptor_test_sequence.npz", timestamps_ns=ts, observations=obs, rate_hz=rate_hz)
    (out / "README.md").write_text(GENERIC_README.format(rate=rate_hz, native=rate_hz // 100,
                                                          interval=1_000_000_000 // rate_hz, policy=policy_name))
    return written + [out / f for f in ("raptor_policy_weights.h", "raptor_test_sequence.h", "raptor_test_sequence.npz",
                                         "README.md")]


GENERIC_README = """# RAPTOR policy export ({policy}, generic C)

Files: `raptor_policy.c/.h` (C99 core: no heap, no recursion, fixed-size state), `raptor_policy_weights.h`
(generated weights + self-test data), `raptor_test_sequence.h` (a fixed {rate} Hz sequence), `test_main.c`,
`Makefile`, `qemu/` (bare-metal start-up and linker scripts for QEMU's netduinoplus2 and mps2-an500).

    make run-host        # host build: self-test + sequence, exit code = verdict
    make run-m4          # Cortex-M4F (STM32F405) under qemu-system-arm
    make run-m7          # Cortex-M7 (mps2-an500) under qemu-system-arm
    make size            # flash / RAM of core + weights

Integration (every control tick, {rate} Hz here):

    static raptor_policy_t policy;
    raptor_policy_init(&policy, &RAPTOR_WEIGHTS, {native} /* native every N calls */, {interval} /* ns */);
    raptor_policy_set_heading(&policy, &RAPTOR_HEADING);  /* the policy file's heading governor */
    raptor_policy_set_lead(&policy, &RAPTOR_LEAD);        /* its setpoint-acceleration lead */
    if (raptor_policy_self_test(&RAPTOR_WEIGHTS, &raptor_self_test_input[0][0][0],
                                &raptor_self_test_output[0][0][0], RAPTOR_SELF_TEST_STEPS,
                                RAPTOR_SELF_TEST_BATCH) > RAPTOR_SELF_TEST_TOLERANCE) refuse_to_start();
    raptor_policy_reset(&policy);                        /* on activation */
    raptor_policy_set_yaw_setpoint(&policy, cosf(yaw_sp), sinf(yaw_sp));  /* when the setpoint has a yaw */
    status = raptor_policy_control(&policy, now_ns, &obs, &action);

`obs`: position and velocity (FLU world, relative to the setpoint, m and m/s), quaternion w,x,y,z body->world,
body rates rad/s, the previously commanded action. `action`: [-1, 1] per motor, order front-right, back-right,
back-left, front-left. Status bits: NATIVE_STEP, INPUT_INVALID (NaN/inf input: the safe action, all -1 by default,
is returned and the state is untouched; the next valid call recovers), TIMESTAMP_INVALID, TIMING_JITTER/BIAS.
"""


# PX4 builds external modules from EXTERNAL_MODULES_LOCATION=<folder>, whose src/CMakeLists.txt names them.
PX4_MODULE_DIR = Path("src") / "modules" / "raptor_policy"
PX4_EXTERNAL_CMAKE = ("# PX4 external modules (raptor export --target px4):\n"
                      "#   make <board> EXTERNAL_MODULES_LOCATION=<the folder above this src/>\n"
                      "set(config_module_list_external\n\tmodules/raptor_policy\n\tPARENT_SCOPE\n)\n")


def target_module_dir(out: Path, target: str) -> Path:
    """Where a target's sources are inside an export folder (PX4: the layout EXTERNAL_MODULES_LOCATION expects)."""
    return out / PX4_MODULE_DIR if target == "px4" else out


def export_target(policy, policy_name: str, target: str, out: Path) -> list[Path]:
    """Flight-controller glue: the C core, the weights header and firmware/targets/<target>/* (adapter, glue, the
    firmware API header, build snippets, README) in one folder (PX4: src/modules/raptor_policy/ beside
    src/CMakeLists.txt, with the README at the top)."""
    out.mkdir(parents=True, exist_ok=True)
    mod = target_module_dir(out, target)
    mod.mkdir(parents=True, exist_ok=True)
    fw = resources.files("raptor.firmware")
    written = []
    for name in ("raptor_policy.c", "raptor_policy.h", "raptor_schema.h"):
        with fw.joinpath(name).open("rb") as src, open(mod / name, "wb") as f:
            shutil.copyfileobj(src, f)
        written.append(mod / name)
    tdir = fw.joinpath("targets").joinpath(target)
    for entry in sorted(tdir.iterdir(), key=lambda e: e.name):
        if entry.is_file() and not entry.name.startswith("."):
            data = entry.read_bytes()
            dst = mod / entry.name
            if entry.name == "README.md":
                data = (f"<!-- raptor export --target {target}, policy {policy_name} -->\n").encode() + data
                dst = out / entry.name
            dst.write_bytes(data)
            written.append(dst)
    if target == "px4":
        (out / "src" / "CMakeLists.txt").write_text(PX4_EXTERNAL_CMAKE)
        written.append(out / "src" / "CMakeLists.txt")
    (mod / "raptor_policy_weights.h").write_text(weights_header(policy, source_file(policy_name), policy_name))
    return written + [mod / "raptor_policy_weights.h"]


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


def export(policy_name: str, target: str, out: str | Path, rate_hz: int = 400, policy=None) -> list[Path]:
    """Write the export of `policy_name` ('default', 'official' or a file) for `target` into `out`; `policy`: the
    same policy already loaded (raptor.policy.load(policy_name)), so a caller that flies it too loads it once."""
    from raptor import policy as rp

    if target not in TARGETS:
        raise ConfigError(f"unknown target '{target}'; choose one of {', '.join(TARGETS)}")
    if rate_hz % 100 or not 100 <= rate_hz <= 10000:
        raise ConfigError(f"--rate-hz must be a multiple of 100 between 100 and 10000 (got {rate_hz})")
    policy = policy if policy is not None else rp.load(policy_name)
    out = check_writable_folder(out)
    # Everything is written to a temporary folder beside OUT first and moved in only when all of it succeeded: a
    # failed export leaves OUT as it was (other files there, e.g. a build/ folder, are kept).
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.export-"))
    try:
        if target == "onnx":
            files = [export_onnx(policy, tmp)]
        elif target == "rltools":
            from raptor.policy_export.rltools_target import export_rltools

            files = export_rltools(policy, policy_name, source_file(policy_name), tmp)
        elif target in ("crazyflie", "px4", "betaflight"):
            files = export_target(policy, policy_name, target, tmp)
        else:
            files = export_generic(policy, policy_name, tmp, rate_hz)
        moved = []
        for f in files:
            dst = out / f.relative_to(tmp)
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.chmod(f, file_mode())
            os.replace(f, dst)
            moved.append(dst)
        return moved
    except OSError as e:
        raise ConfigError(f"export to {out} failed: {e.strerror or e}; nothing in {out} was changed") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
