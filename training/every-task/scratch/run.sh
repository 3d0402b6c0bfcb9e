#!/usr/bin/env bash
# #42's next lever (docs/training.md, "The continuation with thrown starts"): the run's distillation recipe from scratch
# on the same 314 teachers, with hover and thrown episodes only (hover, thrown, hover, hover) instead of the every-task
# mix, to tell whether the multi-task mix costs the hover of agile low thrust-to-weight airframes; and no-race: the
# run's own every-task mix on its 230 reference-class teachers only (run ids 200-455), to tell whether the 84
# race-class teachers cost it. Each resumes where its last committed checkpoint left it (about 8-10 s per epoch here
# with nothing else running, 800 epochs).
#   bash training/every-task/scratch/run.sh hover-thrown
#   bash training/every-task/scratch/run.sh no-race
set -eu
cd "$(dirname "$0")/../../.."  # the repository root
V=$1
D=training/every-task/scratch/$V
IDS=()
case $V in
  hover-thrown) TARGETS=hover,thrown,hover,hover ;;  # the task mix changed, every teacher
  no-race) TARGETS=hover,figure_eight,hover,step,hover,langevin; IDS=(--ids 200-455) ;;  # the run's mix, no race class
  *) echo "usage: run.sh hover-thrown|no-race" >&2; exit 2 ;;
esac
if [ -f "$D/config.json" ]; then
  exec raptor distill --teachers training/every-task/train --out "$D" --resume --no-progress
fi
exec raptor distill --teachers training/every-task/train --epochs 800 --bc-epochs 30 --episodes-per-teacher 7 \
  --passes 3 --lr 1e-3 --final-lr 0.1 --any-yaw 0.25 --eval-every 10 --targets $TARGETS --lead 8 \
  --holdout sampled:32:4242 "${IDS[@]}" --no-progress --out "$D"
