#!/usr/bin/env bash
# K teachers (default 1000) trained together on one GPU for a bounded time (issue #9's GPU check), then judged
# at the quality bar like every `raptor train` teacher (500 hover episodes each, the published policy's
# termination on the same starts + 1 point, mean |da| <= 0.05). Prints and writes teachers-to-bar per GPU-hour.
#
#   bash benchmarks/gpu_teachers.sh OUT [TRAIN_SECONDS=200] [K=1000]      (DEVICE=cpu for a dry run)
#
# Phases: a 2-teacher smoke run on the device (every code path of `raptor train`, quick), the K-teacher run
# (`raptor train --teachers-per-shard K --time-limit TRAIN_SECONDS`), its status table and teacher files into OUT
# (split in 15 MB parts), and a 2-epoch `raptor distill` smoke run on the device if time is left (DEADLINE_S).
# On a machine without the package installed (the lent GPU machines): benchmarks/gpu_env.sh.
set -u -o pipefail
OUT=${1:?usage: gpu_teachers.sh OUT [TRAIN_SECONDS] [K]}
LIMIT=${2:-200}
K=${3:-1000}
DEV=${DEVICE:-cuda}
DEADLINE_S=${DEADLINE_S:-560}
RUN=${RUN_DIR:-/tmp/raptor-k$K}
T0=$(date +%s)
mkdir -p "$OUT"
exec > >(tee -a "$OUT/log.txt") 2>&1
since() { echo $(($(date +%s) - T0)); }

source "$(dirname "$0")/gpu_env.sh"

echo "== [$(since) s] smoke: 2 teachers on $DEV"
rm -rf /tmp/raptor-smoke /tmp/raptor-dsmoke
timeout 180 python3 -m raptor train --airframes sampled:1000:0 --ids 0-1 --teachers-per-shard 2 --steps 16384 \
  --eval-every 8192 --device "$DEV" --out /tmp/raptor-smoke --no-progress || { echo "SMOKE FAILED"; exit 3; }
python3 -m raptor train --status /tmp/raptor-smoke --json | grep -q '"reference_termination_rate": null' &&
  echo "WARNING: the published policy did not load; the bar falls back to <= 10 % termination"

echo "== [$(since) s] $K teachers on $DEV, training limited to $LIMIT s"
rm -rf "$RUN"
t1=$(date +%s)
timeout $((DEADLINE_S - $(since) - 30)) python3 -m raptor train --airframes sampled:1000:0 --ids 0-$((K - 1)) \
  --teachers-per-shard "$K" --steps 2000000 --any-yaw 0.25 --device "$DEV" --time-limit "$LIMIT" --out "$RUN" \
  --checkpoint-every 120 --no-progress > "$OUT/train_table.md"
rc=$?
grep "selection eval" "$OUT/train_table.md"
wall=$(($(date +%s) - t1))
tail -3 "$OUT/train_table.md"
echo "== [$(since) s] $K-teacher run: exit $rc, $wall s wall (start to teacher files)"
python3 -m raptor train --status "$RUN" --json > "$OUT/status.json"
python3 - "$OUT/status.json" "$wall" "$K" "$LIMIT" "$OUT/train_table.md" <<'EOF'
import json, re, sys
rows, wall, K, limit = json.load(open(sys.argv[1])), float(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
evals = re.findall(r"([\d,]+) steps each, (\d+) s; selection", open(sys.argv[5]).read())
if evals:
    n, s = int(evals[-1][0].replace(",", "")), float(evals[-1][1])
    print(f"aggregate training env-steps/s (rollout + update, selection evaluations excluded): {K * n / s:,.0f}")
done = [r for r in rows if r["state"] == "finished"]
ok = [r for r in done if r["passed"]]
steps = max((r["steps"] for r in done), default=0)
print(f"K = {K}: {len(done)} finished, {len(ok)} at the bar after {steps:,} steps each "
      f"({limit:.0f} s training limit, {wall:.0f} s wall in all)")
if done:
    mean = lambda k: sum(r[k] for r in done) / len(done)
    print(f"mean success {100 * mean('success_rate'):.1f} %, terminated {100 * mean('termination_rate'):.1f} %, "
          f"mean |da| {mean('mean_action_change'):.4f}")
    print(f"teachers-to-bar per GPU-hour: {len(ok) * 3600 / max(wall, 1):,.0f}")
EOF
tar czf - -C "$RUN" teachers run.json airframes.json | split -b 15m - "$OUT/teachers.tgz."

left=$((DEADLINE_S - $(since)))
if [ "$left" -gt 60 ]; then
  echo "== [$(since) s] distill smoke on $DEV ($left s left)"
  timeout $((left - 10)) python3 -m raptor distill --teachers /tmp/raptor-smoke --out /tmp/raptor-dsmoke \
    --epochs 2 --bc-epochs 1 --episodes-per-teacher 2 --include-failed --eval-episodes 4 --device "$DEV" \
    --no-progress 2>&1 | tail -15 || echo "DISTILL SMOKE FAILED"
fi
echo "== [$(since) s] done"
