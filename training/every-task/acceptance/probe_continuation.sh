#!/usr/bin/env bash
# The continuation probes of docs/training.md (#42, 2026-12-07): 60 low-rate DAgger epochs from the every-task
# student, the sampler's class only, then all teachers (outputs in runs/, not committed).
cd "$(dirname "$0")/../../.."  # the repository root
COMMON="--teachers training/every-task/train --init-from training/every-task/student/student.safetensors --epochs 60 --bc-epochs 0 --episodes-per-teacher 7 --passes 3 --lr 3e-4 --final-lr 0.3 --any-yaw 0.25 --targets hover,figure_eight,hover,step,hover,langevin --lead 8 --eval-every 20 --holdout sampled:32:4242 --no-progress"
raptor distill $COMMON --ids 200-455 --out runs/probe_ref > runs/probe_ref.log 2>&1
raptor distill $COMMON --out runs/probe_all > runs/probe_all.log 2>&1
echo done > runs/probe.done
