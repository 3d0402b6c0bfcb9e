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

import os
import shutil
import tempfile
from importlib import resources
from pathlib import Path

import numpy as np

from raptor import policy as rp
from raptor.errors import ConfigError
from raptor.fileio import check_writable_folder, file_mode
from raptor.policy_export.c_headers import sequence_header, weights_header
from raptor.policy_export.core_policy import source_file
from raptor.policy_export.onnx_target import export_onnx
from raptor.policy_export.rltools_target import export_rltools
from raptor.policy_export.sequences import parity_sequence

TARGETS = ("generic", "onnx", "crazyflie", "px4", "betaflight", "rltools")
FIRMWARE_FILES = ("raptor_policy.c", "raptor_policy.h", "raptor_schema.h", "test_main.c", "Makefile", "qemu/startup.c",
                  "qemu/stm32f405.ld", "qemu/mps2_an500.ld", "hil/hil_device.c", "hil/hil_protocol.c",
                  "hil/hil_protocol.h", "hil/hil_port.h", "hil/port_host.c", "hil/port_stm32.c", "hil/fuzz_main.c")


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


def export(policy_name: str, target: str, out: str | Path, rate_hz: int = 400, policy=None) -> list[Path]:
    """Write the export of `policy_name` ('default', 'official' or a file) for `target` into `out`; `policy`: the
    same policy already loaded (raptor.policy.load(policy_name)), so a caller that flies it too loads it once."""
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
