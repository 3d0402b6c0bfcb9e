/* raptor_crazyflie_adapter: the only place where the Crazyflie's frames, setpoints and motor order meet the policy's.
 *
 * Pure C99, no Crazyflie header (host tests call it through ctypes). Crazyflie conventions (crazyflie-firmware
 * 2026.08): world and body frames are already x forward, y left, z up (FLU), the state quaternion is x, y, z, w
 * body -> world, the gyro is in deg/s, and motors M1..M4 are front-right, back-right, back-left, front-left: the
 * policy's order, so the motor map is the identity. Actions map linearly to the motor's normalized command
 * (controlModeForce: normalizedForces in [0, 1] -> PWM ratio 0..65535), as the authors' ratio = (a + 1) / 2 * 65535.
 */
#ifndef RAPTOR_CRAZYFLIE_ADAPTER_H
#define RAPTOR_CRAZYFLIE_ADAPTER_H

#include <stdint.h>

#include "raptor_schema.h"

#ifdef __cplusplus
extern "C" {
#endif

#define RAPTOR_CF_POSITION_CLIP_M 0.5f
#define RAPTOR_CF_VELOCITY_CLIP_MPS 2.0f
#define RAPTOR_CF_SETPOINT_TIMEOUT_US 200000u /* dead-man: no new setpoint for 200 ms stops the motors */
#define RAPTOR_CF_NATIVE_EVERY 10u            /* stabilizer at 1 kHz, policy native step at 100 Hz */

/* policy motor i -> Crazyflie motor index (M1 = 0) */
static const uint8_t RAPTOR_CF_MOTOR_INDEX[4] = RAPTOR_MOTOR_INDEX_CRAZYFLIE;

/* A commander setpoint in the adapter's own terms (no firmware type; the controller fills it from setpoint_t). */
typedef struct {
    float position[3];       /* m, FLU world */
    float velocity[3];       /* m/s, FLU world; the body-yaw frame when velocity_body */
    uint8_t position_abs[3]; /* per axis: 1 when the axis holds a position (mode modeAbs), 0 for velocity only */
    uint8_t velocity_body;   /* setpoint_t.velocity_body: cflib's hover and velocity-world/body setpoints */
} raptor_cf_setpoint_t;

/* The policy's errors to the setpoint (FLU world), clipped: position (m) and velocity (m/s). An axis without a
 * position (velocity mode) gets position error 0 and tracks the velocity; a body-frame setpoint velocity is turned
 * into the world frame by the vehicle's yaw (from q = w, x, y, z), as the firmware's PID position controller does. */
void raptor_cf_errors(const float position[3], const float velocity[3], const float q[4],
                      const raptor_cf_setpoint_t *setpoint, float position_error[3], float velocity_error[3]);
/* The yaw setpoint (rad, world, about z) after one stabilizer tick of dt_s: the commander's absolute yaw (deg) in
 * modeAbs, the previous setpoint turned by its yaw rate (deg/s, the attitude-rate setpoint) in modeVelocity (cflib's
 * hover setpoints), else the previous one (held). */
float raptor_cf_yaw_setpoint(float previous_rad, uint8_t yaw_mode_abs, float yaw_deg, uint8_t yaw_mode_velocity,
                             float yaw_rate_dps, float dt_s);
/* State quaternion (x, y, z, w) -> policy quaternion (w, x, y, z), and its inverse. */
void raptor_cf_quaternion_to_policy(float x, float y, float z, float w, float q[4]);
void raptor_cf_policy_to_quaternion(const float q[4], float *x, float *y, float *z, float *w);
/* Gyro deg/s -> body rates rad/s, and its inverse. */
void raptor_cf_gyro_to_body_rates(const float gyro_dps[3], float angular_velocity[3]);
void raptor_cf_body_rates_to_gyro(const float angular_velocity[3], float gyro_dps[3]);
/* Actions [-1, 1] (policy order) <-> normalizedForces [0, 1] (Crazyflie order). */
void raptor_cf_actions_to_forces(const float action[4], float forces[4]);
void raptor_cf_forces_to_actions(const float forces[4], float action[4]);

/* The activation and dead-man gate, clock-agnostic: a setpoint counts as fresh while its timestamp keeps changing. */
typedef struct {
    uint8_t active;
    uint8_t reset_pending;
    uint32_t last_setpoint_stamp;
    uint64_t last_fresh_us;
    uint8_t seen;
} raptor_cf_gate_t;
/* Returns 1 while the policy drives the motors: parameter on, self-test passed, and a setpoint seen within the
 * timeout. A rising edge asks for a policy reset. */
uint8_t raptor_cf_gate_update(raptor_cf_gate_t *gate, uint8_t enabled, uint8_t self_test_ok, uint32_t setpoint_stamp,
                              uint64_t now_us);

#ifdef __cplusplus
}
#endif
#endif /* RAPTOR_CRAZYFLIE_ADAPTER_H */
