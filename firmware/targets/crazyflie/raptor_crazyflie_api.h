/* The Crazyflie firmware API the raptor controller uses, one declaration each, with the file it comes from.
 *
 * bitcraze/crazyflie-firmware, release 2025.02. Built as an out-of-tree app (RAPTOR_CF_IN_TREE, set by the app's
 * Kbuild), the real headers come first and the compiler checks every declaration below against them; built alone
 * (CI), the types are the subsets declared here (the fields the controller reads or writes).
 */
#ifndef RAPTOR_CRAZYFLIE_API_H
#define RAPTOR_CRAZYFLIE_API_H

#include <stdbool.h>
#include <stdint.h>

#ifdef RAPTOR_CF_IN_TREE
#include "controller.h"
#include "controller_pid.h"
#include "param.h"
#include "stabilizer_types.h"
#include "usec_time.h"
#else
/* src/modules/interface/imu_types.h */
typedef union {
    struct {
        float x;
        float y;
        float z;
    };
    float axis[3];
} Axis3f;
/* src/modules/interface/stabilizer_types.h (subsets) */
typedef uint32_t stabilizerStep_t;
struct vec3_s {
    uint32_t timestamp;
    float x;
    float y;
    float z;
};
typedef struct vec3_s point_t;
typedef struct vec3_s velocity_t;
typedef struct quaternion_s {
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
} quaternion_t;
typedef struct sensorData_s {
    Axis3f acc;  /* Gs */
    Axis3f gyro; /* deg/s */
} sensorData_t;
typedef struct state_s {
    quaternion_t attitudeQuaternion;
    point_t position;    /* m */
    velocity_t velocity; /* m/s */
} state_t;
typedef enum mode_e { modeDisable = 0, modeAbs, modeVelocity } stab_mode_t;
typedef struct setpoint_s {
    uint32_t timestamp; /* ms, set by the commander when the setpoint arrives */
    point_t position;
    velocity_t velocity;
    struct {
        stab_mode_t x, y, z, roll, pitch, yaw, quat;
    } mode;
} setpoint_t;
#define STABILIZER_NR_OF_MOTORS 4
typedef enum control_mode_e {
    controlModeLegacy = 0,
    controlModeForceTorque = 1,
    controlModeForce = 2,
} control_mode_t;
typedef struct control_s {
    union {
        struct {
            int16_t roll;
            int16_t pitch;
            int16_t yaw;
            float thrust;
        };
        float normalizedForces[STABILIZER_NR_OF_MOTORS]; /* controlModeForce: 0..1 -> PWM ratio 0..65535 */
    };
    control_mode_t controlMode;
} control_t;
/* src/modules/interface/param.h (the registration macros expand into a descriptor table in the firmware) */
#define PARAM_UINT8 0x08
#define PARAM_GROUP_START(NAME) __attribute__((used)) static const char raptor_param_group_##NAME[] = #NAME;
#define PARAM_ADD(TYPE, NAME, ADDRESS) \
    __attribute__((used)) static void *const raptor_param_##NAME = (void *)(ADDRESS);
#define PARAM_GROUP_STOP(NAME)
#endif

/* src/utils/interface/usec_time.h: microseconds since boot, 64-bit */
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
