/* The Crazyflie firmware API the raptor controller uses, one declaration each, with the file it comes from.
 *
 * bitcraze/crazyflie-firmware, release 2026.08 (paths relative to the firmware's root). Two builds:
 * - inside the firmware (RAPTOR_CF_IN_TREE, set by raptor_crazyflie_in_tree.c, which the app's Kbuild compiles): the
 *   firmware's own configuration (autoconf.h) and headers come first, so the out-of-tree controller prototypes are
 *   compiled and our redeclarations below must agree with them, and raptor_crazyflie_check.h compares every field of
 *   the stub types below that the controller touches with the real one (type and enum values), at compile time;
 * - alone (the project's CI, no firmware tree): the stub types below stand in for the real ones.
 * The stubs carry the fields the controller reads or writes, under raptor_cf_stub_* names in both builds.
 */
#ifndef RAPTOR_CRAZYFLIE_API_H
#define RAPTOR_CRAZYFLIE_API_H

#include <stdbool.h>
#include <stdint.h>

/* src/hal/interface/imu_types.h */
typedef union {
    struct {
        float x;
        float y;
        float z;
    };
    float axis[3];
} raptor_cf_stub_Axis3f;
/* src/modules/interface/stabilizer_types.h (subsets) */
struct raptor_cf_stub_vec3_s {
    uint32_t timestamp;
    float x;
    float y;
    float z;
};
typedef struct raptor_cf_stub_quaternion_s {
    uint32_t timestamp;
    union {
        struct {
            float q0;
            float q1;
            float q2;
            float q3;
        };
        struct {
            float x;
            float y;
            float z;
            float w;
        };
    };
} raptor_cf_stub_quaternion_t;
typedef struct {
    raptor_cf_stub_Axis3f acc;  /* Gs */
    raptor_cf_stub_Axis3f gyro; /* deg/s */
} raptor_cf_stub_sensorData_t;
typedef struct {
    raptor_cf_stub_quaternion_t attitudeQuaternion;
    struct raptor_cf_stub_vec3_s position; /* m */
    struct raptor_cf_stub_vec3_s velocity; /* m/s */
} raptor_cf_stub_state_t;
typedef enum { raptor_cf_stub_modeDisable = 0, raptor_cf_stub_modeAbs, raptor_cf_stub_modeVelocity } raptor_cf_stub_mode_t;
typedef struct {
    uint32_t timestamp;
    float roll;
    float pitch;
    float yaw;
} raptor_cf_stub_attitude_t; /* deg, or deg/s as a rate */
typedef struct {
    uint32_t timestamp; /* ms, set by the commander when the setpoint arrives */
    raptor_cf_stub_attitude_t attitude;     /* deg */
    raptor_cf_stub_attitude_t attitudeRate; /* deg/s */
    struct raptor_cf_stub_vec3_s position;
    struct raptor_cf_stub_vec3_s velocity;
    struct raptor_cf_stub_vec3_s acceleration; /* m/s^2, world (full-state setpoints) */
    bool velocity_body; /* true: velocity in the body-yaw frame (cflib's hover / velocity setpoints) */
    struct {
        raptor_cf_stub_mode_t x, y, z, roll, pitch, yaw, quat;
    } mode;
} raptor_cf_stub_setpoint_t;
typedef enum {
    raptor_cf_stub_controlModeLegacy = 0,
    raptor_cf_stub_controlModeForceTorque = 1,
    raptor_cf_stub_controlModeForce = 2,
} raptor_cf_stub_control_mode_t;
typedef struct {
    union {
        struct {
            int16_t roll;
            int16_t pitch;
            int16_t yaw;
            float thrust;
        };
        float normalizedForces[4]; /* controlModeForce: each clamped to [0, 1] -> PWM ratio 0..65535 */
    };
    raptor_cf_stub_control_mode_t controlMode;
} raptor_cf_stub_control_t;
#define RAPTOR_CF_STUB_NR_OF_MOTORS 4
/* src/modules/interface/controller/controller.h: ControllerTypeOot, the value of parameter stabilizer.controller that
 * selects the out-of-tree controller (7th enum value; exists only with CONFIG_CONTROLLER_OOT). The in-tree build
 * asserts this number against the firmware's enum; the exported README quotes it. */
#define RAPTOR_CF_CONTROLLER_TYPE_OOT 6

#ifdef RAPTOR_CF_IN_TREE
#include "autoconf.h" /* build/include/generated: CONFIG_CONTROLLER_OOT, so controller.h declares the OOT hooks */
#ifndef CONFIG_CONTROLLER_OOT
#error "raptor: CONFIG_CONTROLLER_OOT is not set; build with the app's app-config (make in this folder)"
#endif
#include "controller.h"
#include "controller_pid.h"
#include "log.h"
#include "param.h"
#include "stabilizer_types.h"
#include "usec_time.h"
#include "raptor_crazyflie_check.h"
#else
typedef raptor_cf_stub_Axis3f Axis3f;
typedef struct raptor_cf_stub_vec3_s point_t;
typedef struct raptor_cf_stub_vec3_s velocity_t;
typedef raptor_cf_stub_quaternion_t quaternion_t;
typedef raptor_cf_stub_sensorData_t sensorData_t;
typedef raptor_cf_stub_state_t state_t;
typedef raptor_cf_stub_setpoint_t setpoint_t;
typedef raptor_cf_stub_control_t control_t;
typedef uint32_t stabilizerStep_t;
#define modeDisable raptor_cf_stub_modeDisable
#define modeAbs raptor_cf_stub_modeAbs
#define modeVelocity raptor_cf_stub_modeVelocity
#define controlModeForce raptor_cf_stub_controlModeForce
#define STABILIZER_NR_OF_MOTORS RAPTOR_CF_STUB_NR_OF_MOTORS
/* src/modules/interface/param.h and log.h: the registration macros expand into descriptor tables in the firmware;
 * here they take the address, so a wrong variable still fails to compile. */
#define PARAM_UINT8 0x08
#define PARAM_GROUP_START(NAME) __attribute__((used)) static const char raptor_param_group_##NAME[] = #NAME;
#define PARAM_ADD(TYPE, NAME, ADDRESS) \
    __attribute__((used)) static const void *const raptor_param_##NAME = (const void *)(ADDRESS);
#define PARAM_GROUP_STOP(NAME)
#define LOG_UINT8 1
#define LOG_UINT32 3
#define LOG_FLOAT 7
#define LOG_GROUP_START(NAME) __attribute__((used)) static const char raptor_log_group_##NAME[] = #NAME;
#define LOG_ADD(TYPE, NAME, ADDRESS) \
    __attribute__((used)) static const void *const raptor_log_##NAME = (const void *)(ADDRESS);
#define LOG_GROUP_STOP(NAME)
#endif

/* src/hal/interface/usec_time.h: microseconds since boot, 64-bit */
uint64_t usecTimestamp(void);
/* src/modules/interface/controller/controller_pid.h: the stock controller, flying while the policy is off */
void controllerPidInit(void);
bool controllerPidTest(void);
void controllerPid(control_t *control, const setpoint_t *setpoint, const sensorData_t *sensors, const state_t *state,
                   const stabilizerStep_t stabilizerStep);
/* src/modules/interface/controller/controller.h: the out-of-tree controller hooks this app implements */
void controllerOutOfTreeInit(void);
bool controllerOutOfTreeTest(void);
void controllerOutOfTree(control_t *control, const setpoint_t *setpoint, const sensorData_t *sensors,
                         const state_t *state, const stabilizerStep_t stabilizerStep);

#endif /* RAPTOR_CRAZYFLIE_API_H */
