/* raptor_schema.h: generated from raptor.conventions (raptor-conventions/1) by
 * `python -m raptor.policy_export.schema`. Do not edit; tests check it is current. */
#ifndef RAPTOR_SCHEMA_H
#define RAPTOR_SCHEMA_H

#define RAPTOR_CONVENTIONS_VERSION "raptor-conventions/1"
#define RAPTOR_INPUT_DIM 22                         /* network input: [p, R(q) row-major, v, w, previous action] */
#define RAPTOR_HIDDEN_DIM 16                        /* GRU state */
#define RAPTOR_GATES_DIM 48                         /* GRU gates r, z, n (PyTorch order) */
#define RAPTOR_OUTPUT_DIM 4                         /* actions, motor order FR, BR, BL, FL */
#define RAPTOR_NUM_PARAMETERS 2084                  /* weights of the student */
#define RAPTOR_NATIVE_INTERVAL_NS 10000000ULL       /* native step: the GRU commits every 10 ms */
#define RAPTOR_RESET_HISTORY 0.319999993f           /* previous-action input after a reset (2 x 0.66 - 1) */
#define RAPTOR_SELF_TEST_TOLERANCE 9.99999975e-06f  /* largest self-test error a core flies with */
#define RAPTOR_HEADING_MIN_NORM2 9.99999997e-07f    /* no heading below this |(R00, R10)|^2 */
#define RAPTOR_MOTOR_INDEX_CRAZYFLIE {0, 1, 2, 3}   /* policy motor i -> crazyflie motor index */
#define RAPTOR_MOTOR_INDEX_PX4 {0, 3, 1, 2}         /* policy motor i -> px4 motor index */
#define RAPTOR_MOTOR_INDEX_BETAFLIGHT {1, 0, 2, 3}  /* policy motor i -> betaflight motor index */

#endif /* RAPTOR_SCHEMA_H */
