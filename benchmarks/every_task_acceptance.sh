#!/usr/bin/env bash
# Issue #42's acceptance for a candidate default, side by side with the published policy on the same starts, in one
# folder: our simulator (every scenario on fresh airframes, without and with the setpoint lead for both policies; the
# named airframes without a motor cap), MuJoCo (Menagerie's Crazyflie 2 and Skydio X2, the named airframes as
# generated models) and l2f (random-yaw starts of its own; skipped with a note where l2f is not installed).
#
#   benchmarks/every_task_acceptance.sh POLICY OUT [FRESH] [SEED]
#     POLICY  a policy file (or default | official)
#     OUT     a new folder for every command's metrics.json/summary.json and the log
#     FRESH   fresh airframes no decision used (default sampled:200:90210)
#     SEED    seed of the starts (default 13)
#
# EPISODES=10 NAMED_EPISODES=100 MUJOCO_EPISODES=20 L2F_EPISODES=1024 set the sizes (the issue's: 10 per fresh
# airframe); a smoke run: EPISODES=1 NAMED_EPISODES=2 MUJOCO_EPISODES=2 L2F_EPISODES=8 FRESH=sampled:4:90210.
# Exits non-zero if any command fails.
set -euo pipefail
POLICY=${1:?usage: every_task_acceptance.sh POLICY OUT [FRESH] [SEED]}
OUT=${2:?usage: every_task_acceptance.sh POLICY OUT [FRESH] [SEED]}
FRESH=${3:-sampled:200:90210}
SEED=${4:-13}
EPISODES=${EPISODES:-10}
NAMED_EPISODES=${NAMED_EPISODES:-100}
MUJOCO_EPISODES=${MUJOCO_EPISODES:-20}
L2F_EPISODES=${L2F_EPISODES:-1024}
HERE=$(cd "$(dirname "$0")/.." && pwd)
MODELS=${MODELS:-$HERE/tests/data/mujoco_menagerie}
mkdir -p "$OUT"
LOG="$OUT/acceptance.log"
run() {  # one command, its line in the log, its wall time
  local t0=$SECONDS
  echo "\$ $*" | tee -a "$LOG"
  "$@" 2>&1 | tee -a "$LOG" | tail -n 40
  echo "($((SECONDS - t0)) s)" | tee -a "$LOG"
}
echo "# $(date -u +%FT%TZ) acceptance of $POLICY (git $(git -C "$HERE" rev-parse --short HEAD 2>/dev/null || echo unknown))" >> "$LOG"
E="raptor eval --policy $POLICY --compare official --seed $SEED"
run $E --scenario all --airframes "$FRESH" --episodes "$EPISODES" --out "$OUT/fresh"
run $E --scenario all --airframes "$FRESH" --episodes "$EPISODES" --lead 8 --out "$OUT/fresh_lead8"
run $E --scenario hover --airframes named --episodes "$NAMED_EPISODES" --out "$OUT/named_hover"
run $E --scenario all --sim mujoco --mujoco-model bitcraze_crazyflie_2 --models-dir "$MODELS" \
    --episodes "$MUJOCO_EPISODES" --out "$OUT/mujoco_cf2"
run $E --scenario all --sim mujoco --mujoco-model skydio_x2 --models-dir "$MODELS" \
    --episodes "$MUJOCO_EPISODES" --out "$OUT/mujoco_x2"
run $E --scenario all --sim mujoco --airframes crazyflie,x500,mrs,fs,race --episodes "$((MUJOCO_EPISODES / 2 > 0 ? MUJOCO_EPISODES / 2 : 1))" \
    --out "$OUT/mujoco_named"
if python3 -c "import l2f" 2>/dev/null; then
  run python3 "$HERE/benchmarks/l2f_yaw.py" --policies "$POLICY,official" --episodes "$L2F_EPISODES" --seed "$SEED"
else
  echo "l2f not installed: pip install l2f==2.0.18 (compiles ~8 minutes), then rerun for the l2f rows" | tee -a "$LOG"
fi
echo "done: $OUT (acceptance.log, */summary.md)" | tee -a "$LOG"
