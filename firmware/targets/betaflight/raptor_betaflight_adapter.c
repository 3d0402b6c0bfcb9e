/* raptor_betaflight_adapter: conversions between Betaflight 4.6.0 and the policy (see the header). */
#include "raptor_betaflight_adapter.h"

#define RAPTOR_BF_DEG_TO_RAD 0.017453292519943295f

static float clampf(float v, float lo, float hi) { return v < lo ? lo : (v > hi ? hi : v); }

float raptor_bf_channel_to_value(float us, float range) { return ((us - 1000.0f) / 1000.0f * 2.0f - 1.0f) * range; }

float raptor_bf_value_to_channel(float value, float range)
{
    return 1000.0f + (clampf(value / range, -1.0f, 1.0f) + 1.0f) * 500.0f;
}

void raptor_bf_rc_to_errors(const float *rc, float position[3], float linear_velocity[3])
{
    const int p[3] = {RAPTOR_BF_RC_POSITION_X, RAPTOR_BF_RC_POSITION_Y, RAPTOR_BF_RC_POSITION_Z};
    const int v[3] = {RAPTOR_BF_RC_VELOCITY_X, RAPTOR_BF_RC_VELOCITY_Y, RAPTOR_BF_RC_VELOCITY_Z};
    for (int i = 0; i < 3; i++) {
        position[i] = clampf(raptor_bf_channel_to_value(rc[p[i]], RAPTOR_BF_POSITION_RANGE_M),
                             -RAPTOR_BF_POSITION_CLIP_M, RAPTOR_BF_POSITION_CLIP_M);
        linear_velocity[i] = clampf(raptor_bf_channel_to_value(rc[v[i]], RAPTOR_BF_VELOCITY_RANGE_MPS),
                                    -RAPTOR_BF_VELOCITY_CLIP_MPS, RAPTOR_BF_VELOCITY_CLIP_MPS);
    }
}

void raptor_bf_gyro_to_body_rates(const float gyro_dps[3], float angular_velocity[3])
{
    for (int i = 0; i < 3; i++) {
        angular_velocity[i] = gyro_dps[i] * RAPTOR_BF_DEG_TO_RAD;
    }
}

void raptor_bf_quaternion_to_policy(float w, float x, float y, float z, float q[4])
{
    q[0] = w;
    q[1] = x;
    q[2] = y;
    q[3] = z;
}

void raptor_bf_actions_to_motors(const float action[4], float low, float high, float motor[4])
{
    for (int i = 0; i < 4; i++) {
        const float a = clampf(action[i], -1.0f, 1.0f);
        motor[RAPTOR_BF_MOTOR_INDEX[i]] = low + (a + 1.0f) * 0.5f * (high - low);
    }
}

void raptor_bf_motors_to_actions(const float motor[4], float low, float high, float action[4])
{
    for (int i = 0; i < 4; i++) {
        action[i] = (motor[RAPTOR_BF_MOTOR_INDEX[i]] - low) / (high - low) * 2.0f - 1.0f;
    }
}

uint8_t raptor_bf_gate_update(raptor_bf_gate_t *gate, uint8_t armed, float activate_us)
{
    const uint8_t want = (uint8_t)(armed && activate_us > RAPTOR_BF_ACTIVATE_US);
    if (want && !gate->active) {
        gate->reset_pending = 1;
    }
    gate->active = want;
    return want;
}
