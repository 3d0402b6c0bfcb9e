/* raptor_crazyflie_adapter: conversions between the Crazyflie firmware and the policy (see the header). */
#include "raptor_crazyflie_adapter.h"

#include <math.h>

#define RAPTOR_CF_DEG_TO_RAD 0.017453292519943295f

static float clampf(float v, float lo, float hi) { return v < lo ? lo : (v > hi ? hi : v); }

void raptor_cf_errors(const float position[3], const float velocity[3], const float q[4],
                      const raptor_cf_setpoint_t *setpoint, float position_error[3], float velocity_error[3])
{
    float sv[3] = {setpoint->velocity[0], setpoint->velocity[1], setpoint->velocity[2]};
    if (setpoint->velocity_body) {
        /* heading of the body x axis in the world x-y plane: first column of R(q) */
        const float cx = 1.0f - 2.0f * (q[2] * q[2] + q[3] * q[3]);
        const float sx = 2.0f * (q[1] * q[2] + q[0] * q[3]);
        const float n = sqrtf(cx * cx + sx * sx);
        const float c = n > 1e-6f ? cx / n : 1.0f, s = n > 1e-6f ? sx / n : 0.0f;
        sv[0] = c * setpoint->velocity[0] - s * setpoint->velocity[1];
        sv[1] = s * setpoint->velocity[0] + c * setpoint->velocity[1];
    }
    for (int i = 0; i < 3; i++) {
        position_error[i] = setpoint->position_abs[i]
                                ? clampf(position[i] - setpoint->position[i], -RAPTOR_CF_POSITION_CLIP_M,
                                         RAPTOR_CF_POSITION_CLIP_M)
                                : 0.0f;
        velocity_error[i] = clampf(velocity[i] - sv[i], -RAPTOR_CF_VELOCITY_CLIP_MPS, RAPTOR_CF_VELOCITY_CLIP_MPS);
    }
}

float raptor_cf_yaw_setpoint(float previous_rad, uint8_t yaw_mode_abs, float yaw_deg, uint8_t yaw_mode_velocity,
                             float yaw_rate_dps, float dt_s)
{
    float yaw = previous_rad;
    if (yaw_mode_abs && isfinite(yaw_deg)) {
        yaw = yaw_deg * RAPTOR_CF_DEG_TO_RAD;
    } else if (yaw_mode_velocity && isfinite(yaw_rate_dps)) {
        yaw = previous_rad + yaw_rate_dps * RAPTOR_CF_DEG_TO_RAD * dt_s;
    }
    /* keep it in (-pi, pi]: a long turn in rate mode never loses float precision */
    while (yaw > 3.14159265f) yaw -= 6.28318531f;
    while (yaw <= -3.14159265f) yaw += 6.28318531f;
    return yaw;
}

void raptor_cf_quaternion_to_policy(float x, float y, float z, float w, float q[4])
{
    q[0] = w;
    q[1] = x;
    q[2] = y;
    q[3] = z;
}

void raptor_cf_policy_to_quaternion(const float q[4], float *x, float *y, float *z, float *w)
{
    *w = q[0];
    *x = q[1];
    *y = q[2];
    *z = q[3];
}

void raptor_cf_gyro_to_body_rates(const float gyro_dps[3], float angular_velocity[3])
{
    for (int i = 0; i < 3; i++) {
        angular_velocity[i] = gyro_dps[i] * RAPTOR_CF_DEG_TO_RAD;
    }
}

void raptor_cf_body_rates_to_gyro(const float angular_velocity[3], float gyro_dps[3])
{
    for (int i = 0; i < 3; i++) {
        gyro_dps[i] = angular_velocity[i] / RAPTOR_CF_DEG_TO_RAD;
    }
}

void raptor_cf_actions_to_forces(const float action[4], float forces[4])
{
    for (int i = 0; i < 4; i++) {
        forces[RAPTOR_CF_MOTOR_INDEX[i]] = (clampf(action[i], -1.0f, 1.0f) + 1.0f) * 0.5f;
    }
}

void raptor_cf_forces_to_actions(const float forces[4], float action[4])
{
    for (int i = 0; i < 4; i++) {
        action[i] = forces[RAPTOR_CF_MOTOR_INDEX[i]] * 2.0f - 1.0f;
    }
}

uint8_t raptor_cf_gate_update(raptor_cf_gate_t *gate, uint8_t enabled, uint8_t self_test_ok, uint32_t setpoint_stamp,
                              uint64_t now_us)
{
    if (!gate->seen || setpoint_stamp != gate->last_setpoint_stamp) {
        gate->seen = 1;
        gate->last_setpoint_stamp = setpoint_stamp;
        gate->last_fresh_us = now_us;
    }
    const uint8_t fresh = (uint8_t)(now_us - gate->last_fresh_us <= RAPTOR_CF_SETPOINT_TIMEOUT_US);
    const uint8_t want = (uint8_t)(enabled && self_test_ok && fresh);
    if (want && !gate->active) {
        gate->reset_pending = 1;
    }
    gate->active = want;
    return want;
}
