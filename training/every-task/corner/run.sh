#!/usr/bin/env bash
# #42's next lever: corner teachers for the every-task run. The every-task student hovers the agile slow-motor
# airframes of the sampler worse than today's default, whose hover there came from teachers of that corner
# (docs/distillation.md, fc66 -> fs102L); the run trained the sampler's ids 0-255 in order, so it has few of them.
# This adds 96 of the sampler's untrained airframes in that corner (ids.txt, made by `python pick_ids.py 96`) to the
# run as a round of its own (`raptor train --resume --ids`, the run's stored recipe: 4.5M steps, the retrain round's
# length; no id of the run moves, nothing trained is touched), from an installed snapshot of the committed code, in
# the background, its log appended to training/every-task/logs/corner.log:
#   bash training/every-task/corner/run.sh
# Stop with `pkill -TERM -f raptor-corner/bin/raptor` right after a "finalized" line (16-teacher shards, about 10 min
# each here): an unfinished shard's checkpoint is machine-local. Commit training/every-task after each shard.
set -euo pipefail
cd "$(dirname "$0")/../../.."  # the repository root
SNAP=${RAPTOR_RUNNER:-/tmp/raptor-corner}
source training/snapshot.sh  # the committed code installed in $SNAP; COMMIT
LOG=training/every-task/logs/corner.log
IDS=$(cat training/every-task/corner/ids.txt)
echo "=== $(date -u +%FT%TZ) raptor train --out training/every-task/train --resume --ids <corner/ids.txt> --compile (code $COMMIT)" >> "$LOG"
RAPTOR_GIT_COMMIT=$COMMIT PYTHONPATH=$SNAP setsid nohup "$SNAP/bin/raptor" train --out training/every-task/train \
  --resume --ids "$IDS" --compile --no-progress >> "$LOG" 2>&1 < /dev/null &
echo "started (pid $!): tail -f $LOG; raptor train --status training/every-task/train"
