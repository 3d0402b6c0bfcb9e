/* raptor_betaflight: the RAPTOR policy inside Betaflight's flight loop (4.6.0).
 *
 * Called every PID loop between mixTable() and writeMotors(). While armed and AUX1 > 1750 us it builds the observation
 * (Betaflight's attitude estimate and gyro; position and velocity errors from RC channels), runs the policy core
 * (every call runs the network; the GRU advances when >= 10 ms have passed, the reference's executor) and overwrites
 * the mixer's motor[] outputs. Otherwise Betaflight's own controller keeps the motors. A rising edge of the activation
 * resets the policy (GRU state h0, previous action 0). All frame and motor-order conversions live in
 * raptor_betaflight_adapter.c.
 */
#include <string.h>

#include "raptor_betaflight_api.h"
#include "raptor_betaflight.h"
#include "raptor_betaflight_adapter.h"
#include "raptor_policy.h"
#include "raptor_policy_weights.h"


static raptor_policy_t raptor_bf_policy;
static raptor_bf_gate_t raptor_bf_gate;
static float raptor_bf_previous_action[4];
static uint8_t raptor_bf_self_test_ok;
static uint32_t raptor_bf_status;
static uint32_t raptor_bf_active_calls;
static uint32_t raptor_bf_last_us;
static uint64_t raptor_bf_time_ns;
static uint8_t raptor_bf_clock_started;

void raptorBetaflightInit(void)
{
    raptor_policy_init(&raptor_bf_policy, &RAPTOR_WEIGHTS, 0u /* native step by elapsed time */, 0u /* loop rate
        is board-specific: timing checks off */);
    /* the policy file's heading governor; no yaw setpoint: the heading at engagement is held (the RC position
       errors are in Betaflight's attitude frame, turned with it) */
    raptor_policy_set_heading(&raptor_bf_policy, &RAPTOR_HEADING);
    raptor_policy_set_lead(&raptor_bf_policy, &RAPTOR_LEAD); /* no acceleration on the RC channels: no lead */
    const float err = raptor_policy_self_test(&RAPTOR_WEIGHTS, &raptor_self_test_input[0][0][0],
                                              &raptor_self_test_output[0][0][0], RAPTOR_SELF_TEST_STEPS,
                                              RAPTOR_SELF_TEST_BATCH);
    raptor_bf_self_test_ok = (uint8_t)(err <= RAPTOR_SELF_TEST_TOLERANCE);
    memset(&raptor_bf_gate, 0, sizeof(raptor_bf_gate));
}

uint8_t raptorBetaflightSelfTestPassed(void) { return raptor_bf_self_test_ok; }
uint32_t raptorBetaflightLastStatus(void) { return raptor_bf_status; }
uint32_t raptorBetaflightActiveCalls(void) { return raptor_bf_active_calls; }

void raptorBetaflightUpdate(uint64_t currentTimeUs)
{
    /* 64-bit nanoseconds from Betaflight's (often 32-bit, wrapping after 71 min) microsecond clock */
    const uint32_t now_us = (uint32_t)currentTimeUs;
    if (!raptor_bf_clock_started) {
        raptor_bf_clock_started = 1;
        raptor_bf_last_us = now_us;
        raptor_bf_time_ns = (uint64_t)now_us * 1000u;
    }
    raptor_bf_time_ns += (uint64_t)(uint32_t)(now_us - raptor_bf_last_us) * 1000u;
    raptor_bf_last_us = now_us;

    const uint8_t armed = (uint8_t)(ARMING_FLAG(ARMED) != 0);
    const uint8_t usable = (uint8_t)(raptor_bf_self_test_ok && mixerRuntime.motorCount == 4);
    if (!raptor_bf_gate_update(&raptor_bf_gate, (uint8_t)(armed && usable), rcData[RAPTOR_BF_RC_ACTIVATE])) {
        return; /* Betaflight's own controller keeps the motors */
    }
    if (raptor_bf_gate.reset_pending) {
        raptor_policy_reset(&raptor_bf_policy);
        memset(raptor_bf_previous_action, 0, sizeof(raptor_bf_previous_action));
        raptor_bf_gate.reset_pending = 0;
    }
    raptor_observation_t obs;
    quaternion_t q;
    getQuaternion(&q);
    raptor_bf_rc_to_errors(rcData, obs.position, obs.linear_velocity);
    raptor_bf_quaternion_to_policy(q.w, q.x, q.y, q.z, obs.orientation);
    raptor_bf_gyro_to_body_rates(gyro.gyroADCf, obs.angular_velocity);
    memcpy(obs.previous_action, raptor_bf_previous_action, sizeof(raptor_bf_previous_action));

    raptor_action_t act;
    raptor_bf_status = raptor_policy_control(&raptor_bf_policy, raptor_bf_time_ns, &obs, &act);
    memcpy(raptor_bf_previous_action, act.action, sizeof(raptor_bf_previous_action));
    float out[4];
    raptor_bf_actions_to_motors(act.action, mixerRuntime.motorOutputLow, mixerRuntime.motorOutputHigh, out);
    for (int i = 0; i < 4; i++) {
        motor[i] = out[i];
    }
    raptor_bf_active_calls++;
}
