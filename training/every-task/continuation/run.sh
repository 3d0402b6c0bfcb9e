#!/usr/bin/env bash
# The every-task student continued (#42, 2026-12-07): DAgger from the run's student at a low learning rate with thrown
# starts in the episode mix (the one scenario the run's recipe never showed), with all teachers (all/) or with the
# sampler's class listed twice (weighted/: run ids 200-455 fly twice the episodes; the race teachers stay in).
# tail/: weighted/'s selected student continued on hover and thrown episodes only (half of them any yaw, the sampler's
# class weighted up), for the hover of low thrust-to-weight airframes the moving targets cost (docs/training.md).
# agile/: as all/, with the teachers whose airframes are the most agile with the slowest motors listed twice: inverse
# roll inertia x rising motor time constant in the top 35 % of the 314 (agile_ids.txt, 110 teachers), where the
# student's hover offsets sit on the tuning set (docs/training.md).
# Each variant resumes where it stopped (--resume); the choice between them: tune.py on sampled:200:6161.
#   bash training/every-task/continuation/run.sh all|weighted|tail|agile
set -eu
cd "$(dirname "$0")/../../.."  # the repository root
V=$1
D=training/every-task/continuation/$V
COMMON="--teachers training/every-task/train --init-from training/every-task/student/student.safetensors --epochs 80
 --bc-epochs 0 --episodes-per-teacher 7 --passes 3 --lr 3e-4 --final-lr 0.1 --any-yaw 0.25 --lead 8 --eval-every 10
 --targets hover,thrown,figure_eight,hover,step,thrown,hover,langevin --holdout sampled:32:4242 --no-progress
 --threads 1"  # one thread each: the two variants run side by side on 2 cores
case $V in
  all) EXTRA="" ;;
  weighted) EXTRA="--repeat-ids 200-455" ;;
  agile) EXTRA="--repeat-ids $(cat training/every-task/continuation/agile_ids.txt)"
         COMMON="${COMMON/--threads 1/}" ;;
  tail) COMMON="--teachers training/every-task/train --init-from training/every-task/continuation/weighted/student.safetensors
 --epochs 40 --bc-epochs 0 --episodes-per-teacher 7 --passes 3 --lr 1e-4 --final-lr 0.1 --any-yaw 0.5 --lead 8
 --eval-every 10 --targets hover,thrown,hover,hover --holdout sampled:32:4242 --no-progress --repeat-ids 200-455"
        EXTRA="" ;;
  *) echo "usage: run.sh all|weighted|tail|agile" >&2; exit 2 ;;
esac
if [ -f "$D/config.json" ]; then
  raptor distill --teachers training/every-task/train --out "$D" --resume --no-progress
else
  raptor distill $COMMON $EXTRA --out "$D"
fi
