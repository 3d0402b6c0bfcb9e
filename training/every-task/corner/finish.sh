#!/usr/bin/env bash
# #42, after corner/distill.sh has finished: the corner student scored on the tuning set beside today's default
# (continuation/tune.py, sampled:200:6161; today's default's figures are continuation/tune/_default.json, same starts),
# and only if one of its students (the held-out selection, then the last epoch) is no worse than today's default on
# every row (choose.py), that one judged on the fresh set no decision used (sampled:200:90210, seed 13:
# benchmarks/every_task_acceptance.sh, our simulator, MuJoCo and l2f, beside the published policy) with today's default
# on the same starts. Shipping stays a decision by the issue's rule on those figures (docs/training.md):
#   python benchmarks/student_quality.py --ship core/data/policies/default.safetensors --pipeline FILE \
#       --fresh sampled:200:90210 --seed 13 CHOSEN
#   bash training/every-task/corner/finish.sh     # about an hour here; rerunning redoes every step
set -euo pipefail
cd "$(dirname "$0")/../../.."  # the repository root
D=training/every-task/corner/student
C=training/every-task/corner
if [ ! -f "$D/student.safetensors" ]; then
  raptor distill --status "$D"
  echo "the distillation has not finished: bash $C/distill.sh resumes it"; exit 2
fi
mkdir -p "$C/tune"
python3 training/every-task/continuation/tune.py "$C/tune" "$D/student.safetensors" "$D/last.safetensors" \
  | tee "$C/tune/table.md"
if ! python3 "$C/choose.py" training/every-task/continuation/tune/_default.json "$C/tune/student_student.json" \
     "$C/tune/student_last.json" | tee "$C/tune/choice.md"; then
  echo "no corner student is no worse than today's default on the tuning set: not judged"; exit 1
fi
CHOSEN=$(sed -n 's/^chosen: //p' "$C/tune/choice.md")
python3 -c "import l2f" 2>/dev/null || pip install -q l2f==2.0.18  # the l2f rows (compiles about 8 minutes)
bash benchmarks/every_task_acceptance.sh "$CHOSEN" "$C/acceptance" sampled:200:90210 13
raptor eval --policy default --scenario all --airframes sampled:200:90210 --episodes 10 --seed 13 \
  --out "$C/acceptance/default" | tail -n 12
echo "judged: $C/acceptance (*/summary.md); ship only by the issue's rule (this script's header)"
