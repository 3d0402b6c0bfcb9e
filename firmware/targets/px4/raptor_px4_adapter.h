/* raptor_px4_adapter: the only place where PX4's frames, setpoints and motor order meet the policy's.
 *
 * Pure C99, no PX4 header (host tests call it through ctypes). PX4 v1.15 conventions: local position and velocity
 * NED (x north, y east, z down), body FRD (x forward, y right, z down), vehicle_attitude.q = (w, x, y, z) FRD body ->
 * NED, angular velocity FRD rad/s, actuator_motors in the Quad-X order motor1 front-right, motor2 back-left,
 * motor3 front-left, motor4 back-right, commands in [0, 1]. The policy wants FLU world and body: the map
 * F = diag(1, -1, -1) takes NED -> FLU-world (x north, y west, z up) and FRD -> FLU-body, so vectors become
 * (x, -y, -z) and the quaternion (w, x, -y, -z).
 */
#ifndef RAPTOR_PX4_ADAPTER_H
#define RAPTOR_PX4_ADAPTER_H

#include <stdint.h>

#include "raptor_schema.h"

#ifdef __cplusplus
extern "C" {
#endif

#define RAPTOR_PX4_POSITION_CLIP_M 0.5f
#define RAPTOR_PX4_VELOCITY_CLIP_MPS 1.0f
#define RAPTOR_PX4_NATIVE_EVERY 4u /* gyro at 400 Hz (IMU_GYRO_RATEMAX = 400), native step at 100 Hz */
#define RAPTOR_PX4_TIMEOUT_ANGULAR_VELOCITY_US 10000u
#define RAPTOR_PX4_TIMEOUT_ATTITUDE_US 50000u
#define RAPTOR_PX4_TIMEOUT_LOCAL_POSITION_US 100000u
#define RAPTOR_PX4_TIMEOUT_SETPOINT_US 100000u

/* exit reasons (bits) of raptor_px4_check */
#define RAPTOR_PX4_OK 0u
#define RAPTOR_PX4_STALE_ANGULAR_VELOCITY (1u << 0)
#define RAPTOR_PX4_STALE_ATTITUDE (1u << 1)
#define RAPTOR_PX4_STALE_LOCAL_POSITION (1u << 2)
#define RAPTOR_PX4_STALE_SETPOINT (1u << 3)
#define RAPTOR_PX4_INVALID_LOCAL_POSITION (1u << 4)
#define RAPTOR_PX4_INVALID_SETPOINT (1u << 5)
#define RAPTOR_PX4_OFFBOARD_LOST (1u << 6) /* Offboard kept, but direct actuator control withdrawn */
#define RAPTOR_PX4_RELEASED (1u << 7)      /* raptor_policy release */

/* One line naming the bits of an exit reason ("stale setpoint, invalid local position"), for status and logs. */
const char *raptor_px4_reason_name(uint32_t bit);

/* policy motor i (FR, BR, BL, FL) -> actuator_motors.control index */
static const uint8_t RAPTOR_PX4_MOTOR_INDEX[4] = RAPTOR_MOTOR_INDEX_PX4;

/* NED or FRD vector -> FLU (x, -y, -z); the map is its own inverse. */
void raptor_px4_vector_to_flu(const float v[3], float out[3]);
/* Quaternion (w, x, y, z) FRD -> NED  <->  FLU -> FLU: (w, x, -y, -z), its own inverse. */
void raptor_px4_quaternion_to_flu(const float q[4], float out[4]);
/* Errors to the setpoint, FLU world, clipped; NaN setpoint velocity counts as 0. Returns 0, or
 * RAPTOR_PX4_INVALID_SETPOINT when the setpoint position is not finite. */
uint32_t raptor_px4_errors(const float position_ned[3], const float velocity_ned[3], const float setpoint_position_ned[3],
                           const float setpoint_velocity_ned[3], float position_error[3], float velocity_error[3]);
/* A NED yaw setpoint (rad, from north toward east) -> the policy's heading (cos, sin) in FLU world (x north,
 * y west): psi_FLU = -psi_NED. Returns 0 (and writes nothing) for a NaN yaw (PX4: no yaw setpoint). */
uint8_t raptor_px4_yaw_to_flu(float yaw_ned, float *cos_yaw, float *sin_yaw);
/* Actions [-1, 1] (policy order) <-> actuator_motors.control[0..3] in [0, 1] (Quad-X order). */
void raptor_px4_actions_to_motors(const float action[4], float control[4]);
void raptor_px4_motors_to_actions(const float control[4], float action[4]);
/* Freshness of every input at now_us (timestamps in us, hrt_absolute_time); 0 when all are fresh. */
uint32_t raptor_px4_check(uint64_t now_us, uint64_t angular_velocity_us, uint64_t attitude_us,
                          uint64_t local_position_us, uint64_t setpoint_us, uint8_t local_position_valid);

#ifdef __cplusplus
}
#endif
#endif /* RAPTOR_PX4_ADAPTER_H */
