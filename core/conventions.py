"""The one place that defines frames, layouts and orders. Conversions live in the target adapters.

Frames
    world: FLU-style, z up, gravity (0, 0, -9.81) m/s^2.
    body:  x forward, y left, z up (FLU).
    quaternion: (w, x, y, z), unit, rotates body -> world.

Motor / action order (RAPTOR): [front-right, back-right, back-left, front-left].
Actions are normalized to [-1, 1]; command u = min + (clip(a, -1, 1) + 1) / 2 * (max - min).

Setpoint and heading frame (every runtime applies it the same way: raptor.policy.heading in Python, the C core for
the pybind module, HIL and the three flight-controller targets): p and v are relative to the setpoint
(p - p_des, v - v_des, world); with a heading governor (a policy file's metadata "deployment.heading"), p, v and
R(q) are then expressed in the frame of the reference heading psi_ref, turned about world z:
p' = Rz(psi_ref)^T p, v' = Rz(psi_ref)^T v, R' = Rz(psi_ref)^T R; w and the previous action stay (body, motors).
Yaw angles are about world z, FLU: 0 faces world x, counter-clockwise seen from above (PX4's NED yaw: -psi).
"""

from __future__ import annotations

CONVENTIONS_VERSION = "raptor-conventions/1"

DT_NATIVE_S = 0.01  # native control / integration period, 100 Hz
EPISODE_STEPS = 500  # 5 s

# State vector, 17 values: [p(3) m world, q(4) wxyz body->world, v(3) m/s world, w(3) rad/s body,
# m(4) motor state in action-limit units].
STATE_DIM = 17
P = slice(0, 3)
Q = slice(3, 7)
V = slice(7, 10)
W = slice(10, 13)
M = slice(13, 17)

# Student observation, 22 values: [p(3), R(q) row-major(9), v(3), w(3), previous action(4)].
STUDENT_OBS_DIM = 22
# Teacher observation, 26 values: [p - p_des(3), R(9), v - v_des(3), w(3), previous action(4),
# motor state normalized to [-1, 1](4)].
TEACHER_OBS_DIM = 26
# Privileged teacher observation, 29 values: the teacher's 26, then the episode's external (disturbance) force as an
# acceleration in units of g, world frame: f_dist / (m |g|) (3). Not in the reference (see README, "Teachers").
PRIVILEGED_OBS_DIM = 29
ACTION_DIM = 4
OBS_P = slice(0, 3)
OBS_R = slice(3, 12)
OBS_V = slice(12, 15)
OBS_W = slice(15, 18)
OBS_PREV_ACTION = slice(18, 22)
OBS_MOTORS = slice(22, 26)
OBS_FORCE = slice(26, 29)

# The firmware's input (the C core, every target, HIL), 17 values: [p - p_des(3) m, q(4) wxyz body->world,
# v - v_des(3) m/s, w(3) rad/s body, previous action(4)] (raptor.policy_export.core_policy.firmware_observation).
FIRMWARE_OBS_DIM = 17
FW_P, FW_Q, FW_V, FW_W = P, Q, V, W  # where the state holds p, q, v and w (relative to the target for p and v)
FW_PREV_ACTION = slice(13, 17)  # the previous action (where the state holds the motor state)

# A target (setpoint), 6 values: [p_des(3) m world, v_des(3) m/s world] (env.target()).
TARGET_DIM = 6
TARGET_P = slice(0, 3)
TARGET_V = slice(3, 6)

STUDENT_OBS_LAYOUT = "Position.OrientationRotationMatrix.LinearVelocity.AngularVelocityDelayed(0).ActionHistory(1)"

MOTOR_ORDER = ("front_right", "back_right", "back_left", "front_left")
# Policy motor i (MOTOR_ORDER) -> the autopilot's motor index: autopilot[MOTOR_INDEX[t][i]] = policy[i].
# crazyflie: M1..M4 are FR, BR, BL, FL (identity); px4: actuator_motors Quad-X (1 FR, 2 BL, 3 FL, 4 BR);
# betaflight: Quad-X (1 BR, 2 FR, 3 BL, 4 FL).
MOTOR_INDEX = {"crazyflie": (0, 1, 2, 3), "px4": (0, 3, 1, 2), "betaflight": (1, 0, 2, 3)}

# The deployed network and its executor (firmware/raptor_schema.h is generated from these).
HIDDEN_DIM = 16
NUM_PARAMETERS = 2084  # Dense(22->16) + GRU(16) with learned h0 + Dense(16->4); pinned to PARAMETER_LAYOUT by a test
RESET_ACTION_HISTORY = 2 * 0.66 - 1  # the executor's previous-action input after a reset (RAPTOR's 0.66 rpm fraction)
SELF_TEST_TOLERANCE = 1e-5  # the largest error of the stored self-test outputs a core accepts before it flies
HEADING_MIN_NORM2 = 1e-6  # |(R00, R10)|^2 below this: the body x axis is vertical, no heading (raptor.policy.heading)
