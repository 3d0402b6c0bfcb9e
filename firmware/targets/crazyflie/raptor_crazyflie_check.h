/* raptor_crazyflie_check: compile-time comparison of raptor_crazyflie_api.h's stub types with the firmware's real ones.
 *
 * Included by raptor_crazyflie_api.h only inside the firmware build (after the real headers). Every field the
 * controller reads or writes must have the same type in the stub as in the firmware, every enum value it uses the
 * same number, so the stand-alone build (CI, no firmware tree) compiles the same code the firmware does. A mismatch
 * is a compile error that names the field.
 */
#ifndef RAPTOR_CRAZYFLIE_CHECK_H
#define RAPTOR_CRAZYFLIE_CHECK_H

#define RAPTOR_CF_SAME_TYPE(a, b) __builtin_types_compatible_p(__typeof__(a), __typeof__(b))
#define RAPTOR_CF_CHECK_FIELD(REAL, STUB, FIELD)                                                               \
    _Static_assert(RAPTOR_CF_SAME_TYPE(((REAL *)0)->FIELD, ((STUB *)0)->FIELD),                                \
                   "raptor_crazyflie_api.h: " #STUB "." #FIELD " does not match the firmware: " #REAL "." #FIELD)
#define RAPTOR_CF_CHECK_SIZE(REAL, STUB, FIELD)                                                                \
    _Static_assert(sizeof(((REAL *)0)->FIELD) == sizeof(((STUB *)0)->FIELD),                                   \
                   "raptor_crazyflie_api.h: " #STUB "." #FIELD " has another size than the firmware: " #REAL "." #FIELD)
#define RAPTOR_CF_CHECK_VALUE(REAL, STUB) \
    _Static_assert((int)(REAL) == (int)(STUB), "raptor_crazyflie_api.h: " #STUB " does not match the firmware: " #REAL)

RAPTOR_CF_CHECK_FIELD(Axis3f, raptor_cf_stub_Axis3f, x);
RAPTOR_CF_CHECK_FIELD(Axis3f, raptor_cf_stub_Axis3f, axis);
RAPTOR_CF_CHECK_FIELD(sensorData_t, raptor_cf_stub_sensorData_t, gyro.x);
RAPTOR_CF_CHECK_FIELD(sensorData_t, raptor_cf_stub_sensorData_t, gyro.y);
RAPTOR_CF_CHECK_FIELD(sensorData_t, raptor_cf_stub_sensorData_t, gyro.z);
RAPTOR_CF_CHECK_FIELD(state_t, raptor_cf_stub_state_t, attitudeQuaternion.x);
RAPTOR_CF_CHECK_FIELD(state_t, raptor_cf_stub_state_t, attitudeQuaternion.y);
RAPTOR_CF_CHECK_FIELD(state_t, raptor_cf_stub_state_t, attitudeQuaternion.z);
RAPTOR_CF_CHECK_FIELD(state_t, raptor_cf_stub_state_t, attitudeQuaternion.w);
RAPTOR_CF_CHECK_FIELD(state_t, raptor_cf_stub_state_t, position.x);
RAPTOR_CF_CHECK_FIELD(state_t, raptor_cf_stub_state_t, position.y);
RAPTOR_CF_CHECK_FIELD(state_t, raptor_cf_stub_state_t, position.z);
RAPTOR_CF_CHECK_FIELD(state_t, raptor_cf_stub_state_t, velocity.x);
RAPTOR_CF_CHECK_FIELD(state_t, raptor_cf_stub_state_t, velocity.y);
RAPTOR_CF_CHECK_FIELD(state_t, raptor_cf_stub_state_t, velocity.z);
RAPTOR_CF_CHECK_FIELD(setpoint_t, raptor_cf_stub_setpoint_t, timestamp);
RAPTOR_CF_CHECK_FIELD(setpoint_t, raptor_cf_stub_setpoint_t, position.x);
RAPTOR_CF_CHECK_FIELD(setpoint_t, raptor_cf_stub_setpoint_t, position.y);
RAPTOR_CF_CHECK_FIELD(setpoint_t, raptor_cf_stub_setpoint_t, position.z);
RAPTOR_CF_CHECK_FIELD(setpoint_t, raptor_cf_stub_setpoint_t, velocity.x);
RAPTOR_CF_CHECK_FIELD(setpoint_t, raptor_cf_stub_setpoint_t, velocity.y);
RAPTOR_CF_CHECK_FIELD(setpoint_t, raptor_cf_stub_setpoint_t, velocity.z);
RAPTOR_CF_CHECK_FIELD(setpoint_t, raptor_cf_stub_setpoint_t, acceleration.x);
RAPTOR_CF_CHECK_FIELD(setpoint_t, raptor_cf_stub_setpoint_t, acceleration.y);
RAPTOR_CF_CHECK_FIELD(setpoint_t, raptor_cf_stub_setpoint_t, acceleration.z);
RAPTOR_CF_CHECK_FIELD(setpoint_t, raptor_cf_stub_setpoint_t, velocity_body);
RAPTOR_CF_CHECK_FIELD(setpoint_t, raptor_cf_stub_setpoint_t, attitude.yaw);
RAPTOR_CF_CHECK_FIELD(setpoint_t, raptor_cf_stub_setpoint_t, attitudeRate.yaw);
RAPTOR_CF_CHECK_SIZE(setpoint_t, raptor_cf_stub_setpoint_t, mode.yaw);
RAPTOR_CF_CHECK_SIZE(setpoint_t, raptor_cf_stub_setpoint_t, mode.x);
RAPTOR_CF_CHECK_SIZE(setpoint_t, raptor_cf_stub_setpoint_t, mode.y);
RAPTOR_CF_CHECK_SIZE(setpoint_t, raptor_cf_stub_setpoint_t, mode.z);
RAPTOR_CF_CHECK_SIZE(setpoint_t, raptor_cf_stub_setpoint_t, mode);
RAPTOR_CF_CHECK_VALUE(modeDisable, raptor_cf_stub_modeDisable);
RAPTOR_CF_CHECK_VALUE(modeAbs, raptor_cf_stub_modeAbs);
RAPTOR_CF_CHECK_VALUE(modeVelocity, raptor_cf_stub_modeVelocity);
RAPTOR_CF_CHECK_FIELD(control_t, raptor_cf_stub_control_t, normalizedForces);
RAPTOR_CF_CHECK_SIZE(control_t, raptor_cf_stub_control_t, controlMode);
RAPTOR_CF_CHECK_VALUE(controlModeForce, raptor_cf_stub_controlModeForce);
RAPTOR_CF_CHECK_VALUE(STABILIZER_NR_OF_MOTORS, RAPTOR_CF_STUB_NR_OF_MOTORS);
RAPTOR_CF_CHECK_VALUE(ControllerTypeOot, RAPTOR_CF_CONTROLLER_TYPE_OOT);
_Static_assert(RAPTOR_CF_SAME_TYPE(stabilizerStep_t, uint32_t), "raptor: stabilizerStep_t is no longer uint32_t");

#endif /* RAPTOR_CRAZYFLIE_CHECK_H */
