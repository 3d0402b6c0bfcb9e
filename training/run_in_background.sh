#!/usr/bin/env bash
# Continue a committed run in the background, from an installed snapshot of the committed code (edits in the
# checkout never reach the running process), its log appended to training/<run>/logs/pipeline.log.
#
#   training/run_in_background.sh every-task --resume --until retrain
#   training/run_in_background.sh every-task --resume --add-airframes sampled:64:3:race-fast --until retrain
#
# Stop it with `pkill -TERM -f runner/bin/raptor` right after a "finalized" line (a shard boundary) or between
# distillation epochs: nothing trained is lost. Commit training/<run> after each shard and every few dozen epochs.
set -euo pipefail
RUN=${1:?usage: training/run_in_background.sh RUN [raptor pipeline options]}
shift
REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"
[ -f "training/$RUN/pipeline.json" ] || { echo "no run in training/$RUN (pipeline.json missing)"; exit 2; }
SNAP=${RAPTOR_RUNNER:-/tmp/raptor-runner}
source training/snapshot.sh  # the committed code installed in $SNAP; COMMIT
mkdir -p "training/$RUN/logs"
echo "=== $(date -u +%FT%TZ) raptor pipeline --out training/$RUN $* (code $COMMIT)" >> "training/$RUN/logs/pipeline.log"
RAPTOR_GIT_COMMIT=$COMMIT PYTHONPATH=$SNAP setsid nohup "$SNAP/bin/raptor" pipeline --out "training/$RUN" "$@" \
  --no-progress >> "training/$RUN/logs/pipeline.log" 2>&1 < /dev/null &
echo "started (pid $!): tail -f training/$RUN/logs/pipeline.log; raptor pipeline --status training/$RUN"
