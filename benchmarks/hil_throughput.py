"""HIL link throughput: lock-step OBS -> ACTION round trips per second.

    python3 benchmarks/hil_throughput.py [--seconds 5]

Builds the HIL firmware for this host and for the STM32F405 and measures, in one run:
  * host build over stdin/stdout pipes,
  * host build over a pty, through pyserial (what a USB-serial board looks like to the host),
  * the STM32F405 image in QEMU (netduinoplus2, USART1 on QEMU's stdio),
and prints each rate with the ratio to the 100 Hz lock-step target. Needs make, gcc, and for QEMU
gcc-arm-none-eabi, libnewlib-arm-none-eabi and qemu-system-arm.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from raptor.hil.link import HilClient, ProcessTransport, PtyProcessTransport, Transport, qemu_argv
from raptor.hil.runner import build_device, connect


def round_trips(transport: Transport, seconds: float) -> tuple[float, float]:
    client = HilClient(transport, timeout_s=1.0)
    connect(client)
    client.reset(4, 0)
    obs = np.zeros(17, np.float32)
    obs[3] = 1.0
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        client.observe(10**9 + n * 2_500_000, obs)
        n += 1
    rate = n / (time.perf_counter() - t0)
    rtt = float(np.percentile(np.asarray(client.stats.rtt_s) * 1e3, 99))
    client.close()
    return rate, rtt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--policy", default="official")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        host = str(build_device(args.policy, "host", Path(tmp) / "host"))
        links = [("host build, pipes", lambda: ProcessTransport([host])),
                 ("host build, pty", lambda: PtyProcessTransport([host]))]
        if shutil.which("qemu-system-arm") and shutil.which("arm-none-eabi-gcc"):
            elf = str(build_device(args.policy, "m4", Path(tmp) / "m4"))
            links.append(("QEMU STM32F405, stdio", lambda: ProcessTransport(qemu_argv(elf))))
        print("| link | round trips/s | p99 RTT [ms] | / 100 Hz target |")
        print("|---|---|---|---|")
        for name, make in links:
            rate, p99 = round_trips(make(), args.seconds)
            print(f"| {name} | {rate:,.0f} | {p99:.2f} | {rate / 100:.1f}x |")


if __name__ == "__main__":
    main()
