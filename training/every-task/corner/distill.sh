#!/usr/bin/env bash
# #42: the every-task student again, from scratch, on every teacher of the run at the bar once the corner round
# (run.sh) is in: the run's distillation recipe (pipeline.json's, as the first student was made) with thrown starts
# added to the episode mix (hover, figure-eight, hover, step, hover, Langevin, hover, thrown: half the epochs hover as
# before, one in eight thrown, the scenario the first student lost to today's default). From an installed snapshot of
# the committed code, in the background, its log appended to training/every-task/logs/corner-distill.log; rerunning it
# resumes from the committed checkpoint (student/checkpoint.pt, its fallback checkpoint.pt.prev):
#   bash training/every-task/corner/distill.sh
# Stop with `pkill -TERM -f raptor-corner-distill/bin/raptor` (the epoch under way finishes and is kept); commit
# training/every-task/corner/student every few dozen epochs; `raptor distill --status training/every-task/corner/student`
# says where it stands. Score its students with
#   python training/every-task/continuation/tune.py OUT training/every-task/corner/student/student.safetensors
set -euo pipefail
cd "$(dirname "$0")/../../.."  # the repository root
SNAP=${RAPTOR_RUNNER:-/tmp/raptor-corner-distill}
source training/snapshot.sh  # the committed code installed in $SNAP; COMMIT
LOG=training/every-task/logs/corner-distill.log
D=training/every-task/corner/student
if [ -f "$D/config.json" ]; then
  ARGS=(distill --teachers training/every-task/train --out "$D" --resume --no-progress)
else
  ARGS=(distill --teachers training/every-task/train --epochs 800 --bc-epochs 30 --episodes-per-teacher 7 --passes 3
        --lr 1e-3 --final-lr 0.1 --any-yaw 0.25 --eval-every 10 --lead 8 --holdout sampled:32:4242
        --targets hover,figure_eight,hover,step,hover,langevin,hover,thrown --no-progress --out "$D")
fi
echo "=== $(date -u +%FT%TZ) raptor ${ARGS[*]} (code $COMMIT)" >> "$LOG"
RAPTOR_GIT_COMMIT=$COMMIT PYTHONPATH=$SNAP setsid nohup "$SNAP/bin/raptor" "${ARGS[@]}" >> "$LOG" 2>&1 < /dev/null &
echo "started (pid $!): tail -f $LOG"
