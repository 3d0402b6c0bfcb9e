/* raptor_crazyflie_controller: the RAPTOR policy as a Crazyflie out-of-tree controller (crazyflie-firmware 2026.08).
 *
 * The stabilizer calls controllerOutOfTree() at 1 kHz; every call runs the network, every 10th call is a native
 * step that advances the GRU (the reference executor at 1 kHz). Parameter raptor.active = 1 hands the motors to the
 * policy; otherwise (and until the first setpoint) the stock PID controller flies. Setpoints (position and velocity,
 * from the commander: cflib's send_position_setpoint / send_full_state_setpoint, or the high-level commander) must
 * keep arriving: with no new setpoint for 200 ms the motors stop (dead-man). All frame and motor-order conversions
 * live in raptor_crazyflie_adapter.c. Log group `raptor`: engaged, self-test verdict, the core's status bits and the
 * last action, so a user sees the NaN guards and the timing checks from the ground.
 */
#include <math.h>
#include <string.h>

#include "raptor_crazyflie_api.h"
#include "raptor_crazyflie_adapter.h"
#include "raptor_policy.h"
#include "raptor_policy_weights.h"


static raptor_policy_t raptor_cf_policy;
static raptor_cf_gate_t raptor_cf_gate;
static float raptor_cf_previous_action[4];
static uint8_t raptor_cf_active_param;
static uint8_t raptor_cf_self_test_ok;
static uint32_t raptor_cf_status;
static uint8_t raptor_cf_engaged;
static float raptor_cf_yaw_setpoint_rad; /* world (FLU), about z */

void controllerOutOfTreeInit(void)
{
    controllerPidInit();
    raptor_policy_init(&raptor_cf_policy, &RAPTOR_WEIGHTS, RAPTOR_CF_NATIVE_EVERY, 1000000u /* 1 kHz */);
    raptor_policy_set_heading(&raptor_cf_policy, &RAPTOR_HEADING); /* the policy file's heading governor */
    raptor_policy_set_lead(&raptor_cf_policy, &RAPTOR_LEAD);       /* and its setpoint-acceleration lead */
    memset(&raptor_cf_gate, 0, sizeof(raptor_cf_gate));
}

bool controllerOutOfTreeTest(void)
{
    const float err = raptor_policy_self_test(&RAPTOR_WEIGHTS, &raptor_self_test_input[0][0][0],
                                              &raptor_self_test_output[0][0][0], RAPTOR_SELF_TEST_STEPS,
                                              RAPTOR_SELF_TEST_BATCH);
    raptor_cf_self_test_ok = (uint8_t)(err <= RAPTOR_SELF_TEST_TOLERANCE);
    return controllerPidTest() && raptor_cf_self_test_ok;
}

void controllerOutOfTree(control_t *control, const setpoint_t *setpoint, const sensorData_t *sensors,
                         const state_t *state, const stabilizerStep_t stabilizerStep)
{
    const uint64_t now_us = usecTimestamp();
    const uint8_t engaged = raptor_cf_gate_update(&raptor_cf_gate, raptor_cf_active_param, raptor_cf_self_test_ok,
                                                  setpoint->timestamp, now_us);
    raptor_cf_engaged = (uint8_t)(engaged && setpoint->mode.z != modeDisable);
    if (!raptor_cf_active_param) {
        controllerPid(control, setpoint, sensors, state, stabilizerStep);
        return;
    }
    control->controlMode = controlModeForce;
    if (!engaged || setpoint->mode.z == modeDisable) { /* dead-man, failed self-test, or the commander stopped */
        for (int i = 0; i < STABILIZER_NR_OF_MOTORS; i++) {
            control->normalizedForces[i] = 0.0f;
        }
        return;
    }
    raptor_observation_t obs;
    const float p[3] = {state->position.x, state->position.y, state->position.z};
    const float v[3] = {state->velocity.x, state->velocity.y, state->velocity.z};
    const float gyro[3] = {sensors->gyro.x, sensors->gyro.y, sensors->gyro.z};
    const raptor_cf_setpoint_t sp = {
        .position = {setpoint->position.x, setpoint->position.y, setpoint->position.z},
        .velocity = {setpoint->velocity.x, setpoint->velocity.y, setpoint->velocity.z},
        .position_abs = {setpoint->mode.x == modeAbs, setpoint->mode.y == modeAbs, setpoint->mode.z == modeAbs},
        .velocity_body = setpoint->velocity_body,
    };
    raptor_cf_quaternion_to_policy(state->attitudeQuaternion.x, state->attitudeQuaternion.y,
                                   state->attitudeQuaternion.z, state->attitudeQuaternion.w, obs.orientation);
    if (raptor_cf_gate.reset_pending) { /* engaged: fly from here, holding the heading of the moment */
        raptor_policy_reset(&raptor_cf_policy);
        memset(raptor_cf_previous_action, 0, sizeof(raptor_cf_previous_action));
        raptor_cf_yaw_setpoint_rad = atan2f(2.0f * (obs.orientation[1] * obs.orientation[2] +
                                                    obs.orientation[0] * obs.orientation[3]),
                                            1.0f - 2.0f * (obs.orientation[2] * obs.orientation[2] +
                                                           obs.orientation[3] * obs.orientation[3]));
        raptor_cf_gate.reset_pending = 0;
    }
    raptor_cf_yaw_setpoint_rad = raptor_cf_yaw_setpoint(raptor_cf_yaw_setpoint_rad, (uint8_t)(setpoint->mode.yaw == modeAbs),
                                                        setpoint->attitude.yaw,
                                                        (uint8_t)(setpoint->mode.yaw == modeVelocity),
                                                        setpoint->attitudeRate.yaw, 0.001f /* 1 kHz */);
    raptor_policy_set_yaw_setpoint(&raptor_cf_policy, cosf(raptor_cf_yaw_setpoint_rad),
                                   sinf(raptor_cf_yaw_setpoint_rad));
    if (setpoint->mode.x == modeAbs) { /* a position setpoint's acceleration (full-state setpoints carry one) */
        raptor_policy_set_acceleration_setpoint(&raptor_cf_policy, setpoint->acceleration.x, setpoint->acceleration.y,
                                                setpoint->acceleration.z);
    } else {
        raptor_policy_set_acceleration_setpoint(&raptor_cf_policy, 0.0f, 0.0f, 0.0f);
    }
    raptor_cf_errors(p, v, obs.orientation, &sp, obs.position, obs.linear_velocity);
    raptor_cf_gyro_to_body_rates(gyro, obs.angular_velocity);
    memcpy(obs.previous_action, raptor_cf_previous_action, sizeof(raptor_cf_previous_action));

    raptor_action_t act;
    raptor_cf_status = raptor_policy_control(&raptor_cf_policy, now_us * 1000u, &obs, &act);
    memcpy(raptor_cf_previous_action, act.action, sizeof(raptor_cf_previous_action));
    raptor_cf_actions_to_forces(act.action, control->normalizedForces);
}

PARAM_GROUP_START(raptor)
PARAM_ADD(PARAM_UINT8, active, &raptor_cf_active_param)
PARAM_GROUP_STOP(raptor)

LOG_GROUP_START(raptor)
LOG_ADD(LOG_UINT8, engaged, &raptor_cf_engaged)       /* 1 while the policy drives the motors */
LOG_ADD(LOG_UINT8, selfTestOk, &raptor_cf_self_test_ok)
LOG_ADD(LOG_FLOAT, yawSp, &raptor_cf_yaw_setpoint_rad) /* rad, world: the heading the governor turns to */
LOG_ADD(LOG_UINT32, status, &raptor_cf_status)        /* RAPTOR_STATUS_* bits of the last call (raptor_policy.h) */
LOG_ADD(LOG_FLOAT, a0, &raptor_cf_previous_action[0]) /* last action, [-1, 1], motors M1..M4 */
LOG_ADD(LOG_FLOAT, a1, &raptor_cf_previous_action[1])
LOG_ADD(LOG_FLOAT, a2, &raptor_cf_previous_action[2])
LOG_ADD(LOG_FLOAT, a3, &raptor_cf_previous_action[3])
LOG_GROUP_STOP(raptor)
