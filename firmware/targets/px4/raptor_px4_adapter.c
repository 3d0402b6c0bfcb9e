/* raptor_px4_adapter: conversions between PX4 and the policy (see the header). */
#include "raptor_px4_adapter.h"

#include <math.h>
#include <string.h>

static float clampf(float v, float lo, float hi) { return v < lo ? lo : (v > hi ? hi : v); }
/* NaN and +-inf have all exponent bits set: no float equality (PX4 builds with -Wfloat-equal) and no name that
 * shadows a libc built-in (-Wshadow) */
static int raptor_px4_is_finite(float v)
{
    uint32_t bits;
    memcpy(&bits, &v, sizeof bits);
    return (bits & 0x7f800000u) != 0x7f800000u;
}

uint8_t raptor_px4_yaw_to_flu(float yaw_ned, float *cos_yaw, float *sin_yaw)
{
    if (!raptor_px4_is_finite(yaw_ned)) {
        return 0u;
    }
    *cos_yaw = cosf(yaw_ned);
    *sin_yaw = -sinf(yaw_ned);
    return 1u;
}

void raptor_px4_vector_to_flu(const float v[3], float out[3])
{
    out[0] = v[0];
    out[1] = -v[1];
    out[2] = -v[2];
}

void raptor_px4_quaternion_to_flu(const float q[4], float out[4])
{
    out[0] = q[0];
    out[1] = q[1];
    out[2] = -q[2];
    out[3] = -q[3];
}

uint32_t raptor_px4_errors(const float position_ned[3], const float velocity_ned[3], const float setpoint_position_ned[3],
                           const float setpoint_velocity_ned[3], float position_error[3], float velocity_error[3])
{
    for (int i = 0; i < 3; i++) {
        if (!raptor_px4_is_finite(setpoint_position_ned[i])) {
            return RAPTOR_PX4_INVALID_SETPOINT;
        }
    }
    float p[3], sp[3], v[3], sv[3], svn[3];
    for (int i = 0; i < 3; i++) {
        svn[i] = raptor_px4_is_finite(setpoint_velocity_ned[i]) ? setpoint_velocity_ned[i] : 0.0f;
    }
    raptor_px4_vector_to_flu(position_ned, p);
    raptor_px4_vector_to_flu(setpoint_position_ned, sp);
    raptor_px4_vector_to_flu(velocity_ned, v);
    raptor_px4_vector_to_flu(svn, sv);
    for (int i = 0; i < 3; i++) {
        position_error[i] = clampf(p[i] - sp[i], -RAPTOR_PX4_POSITION_CLIP_M, RAPTOR_PX4_POSITION_CLIP_M);
        velocity_error[i] = clampf(v[i] - sv[i], -RAPTOR_PX4_VELOCITY_CLIP_MPS, RAPTOR_PX4_VELOCITY_CLIP_MPS);
    }
    return RAPTOR_PX4_OK;
}

void raptor_px4_actions_to_motors(const float action[4], float control[4])
{
    for (int i = 0; i < 4; i++) {
        control[RAPTOR_PX4_MOTOR_INDEX[i]] = (clampf(action[i], -1.0f, 1.0f) + 1.0f) * 0.5f;
    }
}

void raptor_px4_motors_to_actions(const float control[4], float action[4])
{
    for (int i = 0; i < 4; i++) {
        action[i] = control[RAPTOR_PX4_MOTOR_INDEX[i]] * 2.0f - 1.0f;
    }
}

static uint32_t stale(uint64_t now_us, uint64_t stamp_us, uint32_t timeout_us, uint32_t bit)
{
    return (stamp_us == 0u || now_us < stamp_us || now_us - stamp_us > timeout_us) ? bit : 0u;
}

uint32_t raptor_px4_check(uint64_t now_us, uint64_t angular_velocity_us, uint64_t attitude_us,
                          uint64_t local_position_us, uint64_t setpoint_us, uint8_t local_position_valid)
{
    uint32_t r = 0u;
    r |= stale(now_us, angular_velocity_us, RAPTOR_PX4_TIMEOUT_ANGULAR_VELOCITY_US, RAPTOR_PX4_STALE_ANGULAR_VELOCITY);
    r |= stale(now_us, attitude_us, RAPTOR_PX4_TIMEOUT_ATTITUDE_US, RAPTOR_PX4_STALE_ATTITUDE);
    r |= stale(now_us, local_position_us, RAPTOR_PX4_TIMEOUT_LOCAL_POSITION_US, RAPTOR_PX4_STALE_LOCAL_POSITION);
    r |= stale(now_us, setpoint_us, RAPTOR_PX4_TIMEOUT_SETPOINT_US, RAPTOR_PX4_STALE_SETPOINT);
    if (!local_position_valid) {
        r |= RAPTOR_PX4_INVALID_LOCAL_POSITION;
    }
    return r;
}

const char *raptor_px4_reason_name(uint32_t bit)
{
    switch (bit) {
    case RAPTOR_PX4_STALE_ANGULAR_VELOCITY: return "stale angular velocity";
    case RAPTOR_PX4_STALE_ATTITUDE: return "stale attitude";
    case RAPTOR_PX4_STALE_LOCAL_POSITION: return "stale local position";
    case RAPTOR_PX4_STALE_SETPOINT: return "stale setpoint";
    case RAPTOR_PX4_INVALID_LOCAL_POSITION: return "invalid local position";
    case RAPTOR_PX4_INVALID_SETPOINT: return "invalid (NaN) setpoint";
    case RAPTOR_PX4_OFFBOARD_LOST: return "offboard direct actuator control lost";
    case RAPTOR_PX4_RELEASED: return "released by command";
    default: return "none";
    }
}
