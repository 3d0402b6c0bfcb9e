"""MCU cost of the C inference core: flash, RAM and instructions per control step on Cortex-M4F and M7.

    python3 benchmarks/mcu_cost.py [--policy official]

Exports the policy, then for each core (M4F: QEMU netduinoplus2 / STM32F405; M7: QEMU mps2-an500) and each
optimization level builds (1) our core and (2) a naive baseline (plain loops, libm expf/tanhf) in the same run:
  * flash = code of the core + the 2084 weights (arm-none-eabi-size text + data), RAM = static state (data + bss);
  * instructions per raptor_policy_control call at 400 Hz semantics, from SysTick under `qemu -icount shift=0`
    (one instruction = 1 ns of virtual time; averaged over 100 calls).
Needs gcc-arm-none-eabi, libnewlib-arm-none-eabi and qemu-system-arm.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
MACHINES = {"m4": "netduinoplus2", "m7": "mps2-an500"}


def size_of(objs: list[Path]) -> tuple[int, int]:
    out = subprocess.run(["arm-none-eabi-size", *map(str, objs)], capture_output=True, text=True, check=True).stdout
    text = data = bss = 0
    for line in out.splitlines()[1:]:
        t, d, b = (int(v) for v in line.split()[:3])
        text, data, bss = text + t, data + d, bss + b
    return text + data, data + bss


def run(export_dir: Path, build: Path, core: str, opt: str, naive: bool) -> dict:
    extra = []
    if naive:
        extra = ["EXTRA_CFLAGS=-DRAPTOR_EXTERNAL_FORWARD", f"EXTRA_SRC={HERE / 'naive_forward.c'}"]
    r = subprocess.run(["make", "-s", core, "size", f"BUILD={build}", f"OPT={opt}", *extra], cwd=export_dir,
                       capture_output=True, text=True)
    if r.returncode:
        raise SystemExit(f"build failed ({core} {opt} naive={naive}):\n{r.stdout}{r.stderr}")
    elf = build / core / "raptor_test.elf"
    out = subprocess.run(["qemu-system-arm", "-M", MACHINES[core], "-display", "none", "-monitor", "none", "-serial",
                          "none", "-semihosting-config", "enable=on,target=native", "-icount", "shift=0", "-kernel",
                          str(elf)], capture_output=True, text=True, timeout=120).stdout
    m = re.search(r"ticks (\d+) steps (\d+) hz (\d+)", out)
    ticks, steps, hz = (int(v) for v in m.groups())
    flash, ram = size_of([build / "size" / f"{core}.o", build / "size" / f"{core}_weights.o"])
    if naive:  # the naive forward's own code replaces the core's forward
        obj = build / "naive.o"
        subprocess.run(["arm-none-eabi-gcc", "-std=c99", opt, "-mthumb", "-mfloat-abi=hard",
                        "-mcpu=cortex-m4" if core == "m4" else "-mcpu=cortex-m7",
                        "-mfpu=fpv4-sp-d16" if core == "m4" else "-mfpu=fpv5-d16", f"-I{export_dir}", "-c",
                        str(HERE / "naive_forward.c"), "-o", str(obj)], check=True)
        flash += size_of([obj])[0]
    return {"instructions": ticks / hz * 1e9 / steps, "flash": flash, "ram": ram, "verdict": "verdict pass" in out}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--policy", default="official")
    args = ap.parse_args()
    for tool in ("arm-none-eabi-gcc", "qemu-system-arm", "make"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} not found: apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi "
                             "qemu-system-arm")
    from raptor.policy_export.export import export

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        export(args.policy, "generic", tmp / "export", rate_hz=400)
        print("| core | opt | ours: instructions/step | flash [B] | RAM [B] | naive: instructions/step | ratio |")
        print("|---|---|---|---|---|---|---|")
        for core in ("m4", "m7"):
            for opt in ("-O2", "-Os"):
                ours = run(tmp / "export", tmp / f"b_{core}{opt}", core, opt, naive=False)
                base = run(tmp / "export", tmp / f"n_{core}{opt}", core, opt, naive=True)
                print(f"| {core} | {opt} | {ours['instructions']:,.0f} | {ours['flash']:,} | {ours['ram']} | "
                      f"{base['instructions']:,.0f} | {base['instructions'] / ours['instructions']:.2f}x |")


if __name__ == "__main__":
    main()
