#!/usr/bin/env bash
# The whole pipeline at the mission's scale on one GPU (issue #31): 1000 teachers of sampled:1000:0, distilled,
# evaluated beside the published policy, in three device calls of at most 10 minutes with the run folder carried
# between them (a lent GPU session has 15 minutes in all).
#
#   bash benchmarks/gpu_pipeline.sh 1 RUN OUT    # pipeline_scale.py at K = 1000, then teachers + retrain
#   bash benchmarks/gpu_pipeline.sh 2 RUN OUT    # distill
#   bash benchmarks/gpu_pipeline.sh 3 RUN OUT    # evaluate on fresh airframes, policy, report
#
# RUN is the pipeline's run folder (carry it from one call to the next; commit it under training/ afterwards);
# OUT receives the logs and figures. AIRFRAMES and IDS choose the teachers (default: the first K of sampled:1000:0).
# DEVICE=cpu K=8 STEPS=16384 EPOCHS=2 runs the same calls as a dry run on a CPU: with --quick's small evaluations
# and its distillation of every teacher (a few minutes of training reach no bar), so every stage runs. A call whose
# pipeline fails exits non-zero.
set -u -o pipefail
CALL=${1:?usage: gpu_pipeline.sh CALL RUN OUT}
RUN=${2:?usage: gpu_pipeline.sh CALL RUN OUT}
OUT=${3:?usage: gpu_pipeline.sh CALL RUN OUT}
DEV=${DEVICE:-cuda}
K=${K:-1000}
STEPS=${STEPS:-1800000}     # 1.79M steps per teacher trained in 150 s at K = 1000 on an H200 (issue #31)
LIMIT=${LIMIT:-170}         # training seconds, then finalization
EPOCHS=${EPOCHS:-150}
AIRFRAMES=${AIRFRAMES:-sampled:1000:0}
IDS=${IDS:-0-$((K - 1))}
QUICK=()
[ "$DEV" = cpu ] && QUICK=(--quick)
BATCH=${BATCH:-1024}        # episodes per gradient step: ~10 steps per pass over 1000 x 10 episodes
mkdir -p "$OUT"
exec > >(tee -a "$OUT/log-call$CALL.txt") 2>&1
source "$(dirname "$0")/gpu_env.sh"
T0=$(date +%s)
case "$CALL" in
  1)
    timeout 200 python3 benchmarks/pipeline_scale.py --k "$K" --device "$DEV" --iterations 3 --epochs 2 \
      --steps "$STEPS" --out "$OUT/pipeline_scale.json" || echo "pipeline_scale.py stopped (exit $?)"
    python3 -m raptor pipeline --airframes "$AIRFRAMES" --ids "$IDS" --out "$RUN" --device "$DEV" \
      --teachers-per-shard "$K" --steps "$STEPS" --time-limit "$LIMIT" --epochs "$EPOCHS" --batch-size "$BATCH" \
      "${QUICK[@]}" --no-progress --until retrain
    rc=$? ;;
  2) python3 -m raptor pipeline --out "$RUN" --resume --no-progress --until distill
     rc=$? ;;
  3) python3 -m raptor pipeline --out "$RUN" --resume --no-progress && cp "$RUN/report.md" "$OUT/"
     rc=$?
     if [ "$DEV" != cpu ]; then  # the gpu-marked tests; a failure fails the call
       timeout 120 python3 -m pytest -q -m gpu tests/test_gpu.py || rc=$((rc ? rc : 1))
     fi ;;
  *) echo "CALL is 1, 2 or 3"; exit 2 ;;
esac
python3 -m raptor pipeline --status "$RUN"
echo "call $CALL: exit $rc, $(($(date +%s) - T0)) s"
exit $rc
