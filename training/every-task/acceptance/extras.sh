#!/usr/bin/env bash
# the acceptance rows beyond the pipeline's own evaluation (benchmarks/every_task_acceptance.sh's other commands)
set -u
cd "$(dirname "$0")/../../.."  # the repository root
P=training/every-task/student/student.safetensors
OUT=runs/accept/extras
mkdir -p $OUT
LOG=$OUT/acceptance.log
M=tests/data/mujoco_menagerie
run() { local t0=$SECONDS; echo "\$ $*" >> $LOG; "$@" 2>&1 | tr '\r' '\n' | grep -v "step/s" >> $LOG; echo "($((SECONDS - t0)) s)" >> $LOG; }
E="raptor eval --policy $P --compare official --seed 13"
run $E --scenario hover --airframes named --episodes 100 --out $OUT/named_hover
run $E --scenario all --sim mujoco --mujoco-model bitcraze_crazyflie_2 --models-dir $M --episodes 20 --out $OUT/mujoco_cf2
run $E --scenario all --sim mujoco --mujoco-model skydio_x2 --models-dir $M --episodes 20 --out $OUT/mujoco_x2
run $E --scenario all --sim mujoco --airframes crazyflie,x500,mrs,fs,race --episodes 10 --out $OUT/mujoco_named
run python3 benchmarks/l2f_yaw.py --policies $P,official --episodes 1024 --seed 13
echo done >> $LOG
