"""`raptor hil`: the command over raptor.hil: the simulator here, the policy on a board, a QEMU MCU, a host process,
or inside Betaflight / PX4 SITL."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from raptor.hil.betaflight_sitl import run_sitl_cli
from raptor.hil.link import ProcessTransport, PtyProcessTransport, SerialTransport, Transport, qemu_argv
from raptor.hil.px4_sitl import run_sitl_cli as run_px4
from raptor.hil.runner import build_device, run_hil
from raptor.metrics import markdown_table
from raptor.policy import load as load_policy


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("hil", help="hardware-in-the-loop: simulator here, policy on a board or an emulated MCU")
    dev = p.add_mutually_exclusive_group(required=True)
    dev.add_argument("--port", help="serial device or URL: /dev/ttyACM0, /dev/pts/N, socket://HOST:PORT")
    dev.add_argument("--qemu", action="store_true", help="build the STM32F405 HIL image and run it in QEMU")
    dev.add_argument("--host-device", action="store_true", help="build the HIL firmware for this host, as a process")
    dev.add_argument("--sitl", choices=["betaflight", "px4"],
                     help="betaflight: the policy inside Betaflight 4.6.0 SITL (built here with raptor export --target "
                          "betaflight), flying our simulator over its UDP protocol; px4: the module inside PX4 v1.15 "
                          "SITL, flown in PX4's own simulator (SIH), beside our simulator on SIH's quadrotor")
    p.add_argument("--pty", action="store_true", help="with --host-device: talk to it over a pty (pyserial), not pipes")
    p.add_argument("--baud", type=int, default=921600)
    p.add_argument("--policy", default="default",
                   help="default | official | PATH: the policy the device runs (default: default)")
    p.add_argument("--airframes", default=None, help="default: crazyflie; with --sitl betaflight: race (one airframe)")
    p.add_argument("--scenario", default="hover")
    p.add_argument("--episodes", type=int, default=10, help="episodes per airframe")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--rate-hz", type=int, default=100, help="device control rate (100 or 400; GRU at 100 Hz)")
    p.add_argument("--realtime", action="store_true", help="pace the simulation at wall-clock 100 Hz")
    p.add_argument("--timeout-ms", type=float, default=200.0, help="reply timeout; then the safe action is applied")
    p.add_argument("--safe-action", type=float, default=-1.0, help="action applied on a timeout (default -1)")
    p.add_argument("--px4-tree", default=None, metavar="PATH",
                   help="with --sitl px4: a PX4-Autopilot v1.15 folder or px4-v1.15.2-sitl.tar.xz (default "
                        "RAPTOR_PX4_TREE, or shared/firmware beside the checkout)")
    p.add_argument("--position-source", choices=["truth", "estimate"], default="truth",
                   help="with --sitl px4: the module flies on SIH's ground truth (RPT_POS_SRC 1, standing in for "
                        "motion capture; default) or on PX4's estimate (EKF2 on SIH's 0.2 m-noise GPS)")
    p.add_argument("--out", default=None)
    p.set_defaults(func=_cmd_hil)


def _cmd_hil(args: argparse.Namespace) -> int:
    if args.sitl == "px4":
        return run_px4(args)
    if args.sitl:
        return run_sitl_cli(args)
    args.airframes = args.airframes or "crazyflie"
    policy = load_policy(args.policy)  # once: the export, the device check and the records use it
    with tempfile.TemporaryDirectory(prefix="raptor-hil-") as tmp:
        if args.port:
            transport: Transport = SerialTransport(args.port, args.baud)
        else:
            binary = build_device(args.policy, "m4" if args.qemu else "host", Path(tmp), policy)
            if args.qemu:
                transport = ProcessTransport(qemu_argv(str(binary)))
            elif args.pty:
                transport = PtyProcessTransport([str(binary)], args.baud)
            else:
                transport = ProcessTransport([str(binary)])
        m = run_hil(transport, args.policy, args.airframes, args.scenario, args.episodes, args.seed, args.rate_hz,
                    args.realtime, args.timeout_ms / 1e3, args.safe_action, out=args.out, progress=True,
                    policy=policy)
    print(markdown_table(m, f"HIL {args.policy}, {args.scenario}"))
    device = m.get("device", {})
    if device.get("policy_id"):
        print(f"device: flies policy {device['policy_id']} (sha256 prefix of {args.policy}'s file, from its HELLO), "
              f"self-test error {device['hello'][3]:.1e}")
    link = m["link"]
    print(f"link: {link['replies']}/{link['requests']} replies, {link['timeouts']} timeouts, {link['frames_corrupt']} "
          f"corrupt frames, {link['device_resets']} device resets, RTT mean {link['rtt_ms']['mean']:.3f} ms "
          f"(p99 {link['rtt_ms']['p99']:.3f} ms), {link['round_trips_per_s']:.0f} round trips/s; "
          f"max |device - pybind core| {link['max_abs_action_diff_vs_pybind_core']:.2e}")
    return 0
