"""The Crazyflie target built inside the real crazyflie-firmware tree (shared/firmware, release 2026.08), as a user
builds it: the exported README's own command, the shipped default and a policy with hostile metadata, the app's flash
and RAM against an empty out-of-tree controller built in the same tree, and the stack of the self-test (system task)
and of the control path (stabilizer task) from GCC's call graphs against the real task stack sizes."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
import torch

import raptor.policy as rp
from raptor.policy.io import default_metadata
from raptor.policy_export.export import export
from raptor.policy_export.stack import load_callgraph

# The release tarball (crazyflie-firmware 2026.08 with its submodules): RAPTOR_CRAZYFLIE_TREE, or the project's
# shared/firmware beside the checkout. Elsewhere: `git clone --recursive -b 2026.08
# https://github.com/bitcraze/crazyflie-firmware && tar cJf cf.tar.xz crazyflie-firmware`, then point at it.
TREE = Path(os.environ.get("RAPTOR_CRAZYFLIE_TREE", Path(__file__).resolve().parents[2] / "shared" / "firmware"
                           / "crazyflie-firmware-2026.08.tar.xz"))
HOSTILE = 'cp -a t64 t64c && rm -rf t64c/checkpoints/*; "quoted" \\ back */ end /* ??/ \n new line \t é 😀 */'
EXCEPTION_FRAME_B = 104  # Cortex-M4F: an interrupt stacks 26 words (FP context reserved) on the task's stack
STACK_MARGIN = 0.8  # the deepest chain plus one exception frame within 80 % of the task's stack

pytestmark = [
    pytest.mark.skipif(not TREE.is_file(), reason=f"crazyflie-firmware tree not found at {TREE}: set "
                                                 "RAPTOR_CRAZYFLIE_TREE to "
                                                 "a tarball of release 2026.08 with submodules (see this file's head)"),
    pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None,
                       reason="arm-none-eabi-gcc not installed (apt install gcc-arm-none-eabi)"),
]

EMPTY_APP = """#include <stdbool.h>
#include "controller.h"
#include "controller_pid.h"
void controllerOutOfTreeInit(void) { controllerPidInit(); }
bool controllerOutOfTreeTest(void) { return controllerPidTest(); }
void controllerOutOfTree(control_t *control, const setpoint_t *setpoint, const sensorData_t *sensors,
                         const state_t *state, const stabilizerStep_t step) {
    controllerPid(control, setpoint, sensors, state, step);
}
"""


def _readme_command(app: Path, base: Path) -> list[str]:
    lines = [ln.strip() for ln in (app / "README.md").read_text().splitlines()]
    cmd = next(ln for ln in lines if ln.startswith("make CRAZYFLIE_BASE=") and "cload" not in ln)
    return cmd.replace("../crazyflie-firmware", str(base)).split()


def _make(cmd: list[str], app: Path) -> dict[str, int]:
    env = dict(os.environ, EXTRA_CFLAGS="-fstack-usage -fcallgraph-info=su")
    r = subprocess.run(cmd, cwd=app, capture_output=True, text=True, env=env, timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert (app / "build" / "cf2.bin").is_file()
    sizes = {k.lower(): int(v) for k, v in re.findall(r"^(Flash|RAM|CCM)\s*\|\s*(\d+)/", r.stdout, re.M)}
    assert set(sizes) == {"flash", "ram", "ccm"}, r.stdout[-2000:]
    return sizes


def _task_stack_bytes(base: Path, task: str) -> int:
    config = (base / "src" / "config" / "config.h").read_text()
    words = int(re.search(r"#define FREERTOS_MIN_STACK_SIZE\s+(\d+)", config).group(1))
    m = re.search(rf"#define {task}_TASK_STACKSIZE\s+\(?\s*(\d+)\s*\*\s*configMINIMAL_STACK_SIZE", config)
    return int(m.group(1)) * words * 4


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("cf")
    with tarfile.open(TREE) as t:
        t.extractall(root, filter="tar") if hasattr(tarfile, "data_filter") else t.extractall(root)
    base = root / "crazyflie-firmware"
    app = root / "app"
    # 1. an empty out-of-tree controller (the PID under the OOT hooks), built by the same Makefile: the baseline
    export("default", "crazyflie", app)
    readme_cmd = _readme_command(app, base)
    keep = {"Makefile", "app-config", "README.md"}
    for p in app.iterdir():
        if p.name not in keep:
            p.unlink()
    (app / "Kbuild").write_text("obj-y += empty_oot.o\n")
    (app / "empty_oot.c").write_text(EMPTY_APP)
    empty = _make(readme_cmd, app)
    # 2. the shipped default, exported into the same folder (an incremental build of the same tree)
    (app / "empty_oot.c").unlink()
    for p in app.glob("*.o"):
        p.unlink()
    export("default", "crazyflie", app)
    default = _make(readme_cmd, app)
    graph = load_callgraph(sorted(app.rglob("*.ci")))
    # 3. a policy whose metadata holds comment delimiters, quotes, backslashes, newlines and non-ASCII text
    torch.manual_seed(1)
    net = rp.RaptorPolicyNet()
    meta = default_metadata(source=HOSTILE, name=HOSTILE)
    meta["provenance"]["pipeline"] = [HOSTILE, "*/ int x = 1; /*"]
    rp.save_policy(root / "hostile */ name.safetensors", net, meta)
    symbols = subprocess.run(["arm-none-eabi-nm", str(app / "build" / "cf2.elf")], capture_output=True, text=True,
                             check=True).stdout
    export(str(root / "hostile */ name.safetensors"), "crazyflie", app)
    hostile = _make(readme_cmd, app)
    # 4. a stub that no longer matches the firmware (velocity_body as uint8_t, the firmware's is bool) must not build
    api = app / "raptor_crazyflie_api.h"
    good = api.read_text()
    api.write_text(good.replace("    bool velocity_body;", "    uint8_t velocity_body;"))
    broken = subprocess.run(readme_cmd, cwd=app, capture_output=True, text=True, timeout=900)
    api.write_text(good)
    return {"base": base, "app": app, "empty": empty, "default": default, "hostile": hostile, "graph": graph,
            "symbols": symbols, "broken": broken}


def test_default_and_hostile_metadata_build_cf2_bin_with_the_readmes_command(built):
    cost = {k: built["default"][k] - built["empty"][k] for k in ("flash", "ram", "ccm")}
    print("crazyflie-firmware 2026.08, app vs empty OOT controller:", json.dumps(cost), "default:",
          json.dumps(built["default"]), "empty:", json.dumps(built["empty"]))
    assert 8_000 < cost["flash"] < 40_000  # 2084 float weights (8.3 KB) + self-test data + code
    assert 0 <= cost["ram"] < 1_024  # policy state, gate, log/param variables; no heap, no big buffers
    assert built["hostile"]["flash"] > 0
    header = (built["app"] / "raptor_policy_weights.h").read_text()
    assert "#define RAPTOR_POLICY_PROVENANCE_JSON" in header


def test_readme_selects_the_controller_the_firmware_defines(built):
    controller_h = (built["base"] / "src/modules/interface/controller/controller.h").read_text()
    enum = controller_h[controller_h.index("typedef enum {"):controller_h.index("} ControllerType;")]
    names = [n.strip().rstrip(",") for n in enum.splitlines()[1:] if n.strip() and not n.strip().startswith("#")]
    oot = names.index("ControllerTypeOot")
    readme = (built["app"] / "README.md").read_text()
    assert f"`stabilizer.controller` = {oot}" in readme and f"set_value('stabilizer.controller', {oot})" in readme


@pytest.mark.parametrize("task,entry,call_site,hook", [
    ("SYSTEM", "systemTask", "controllerTest", "controllerOutOfTreeTest"),
    ("STABILIZER", "stabilizerTask", "controller", "controllerOutOfTree"),
])
def test_stack_fits_the_real_task_stacks(built, task, entry, call_site, hook):
    g = built["graph"]
    above, path = g.deepest_path_to(entry, call_site)  # the firmware's frames down to the controller table call
    ours, chain = g.worst_from(hook)
    total = above + ours + EXCEPTION_FRAME_B
    size = _task_stack_bytes(built["base"], task)
    print(f"{task.lower()} task: {' > '.join(path + chain)}: {above} + {ours} + {EXCEPTION_FRAME_B} = {total} B "
          f"of {size} B")
    assert not g.dynamic(path + chain)
    assert total <= STACK_MARGIN * size, f"{total} B of a {size} B stack"


def test_the_in_tree_build_checks_our_declarations_and_registers_the_log_group(built):
    b = built["broken"]
    assert b.returncode != 0
    message = "raptor_cf_stub_setpoint_t.velocity_body does not match the firmware: setpoint_t.velocity_body"
    assert message in b.stdout + b.stderr
    names = {line.split()[-1] for line in built["symbols"].splitlines() if line.strip()}
    assert {"__logs_raptor", "__params_raptor", "controllerOutOfTree", "controllerOutOfTreeTest"} <= names
