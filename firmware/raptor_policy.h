/* raptor_policy: portable C99 inference core of the RAPTOR foundation policy.
 *
 * No heap, no recursion, fixed-size state, no autopilot headers. One core compiles for the host, the
 * pybind11 module (raptor.policy_export._core) and the MCU (Cortex-M4F / M7).
 *
 * Network: Dense(22->16, ReLU) -> GRU(16, PyTorch gates r,z,n, learned h0) -> Dense(16->4).
 * Executor semantics (RAPTOR's rl_tools executor): every call runs the network; a *native* call (every
 * native_every-th call, or >= 10 ms since the last native call when native_every == 0) commits the GRU state,
 * an intermediate call discards it. The previous-action input is the mean of the previous actions passed in
 * since the last native call. Outputs are clamped to [-1, 1].
 *
 * Heading governor (raptor.policy.heading; off unless raptor_policy_set_heading is called with an enabled one):
 * the network sees p, v and R(q) in the frame of a reference heading psi_ref about world z, which starts at the
 * vehicle's heading, turns toward the yaw setpoint by at most one step per native call and stays within the lead
 * limit of the vehicle's heading. Headings are unit (cos, sin) pairs: no libm.
 *
 * Conventions: position and linear velocity FLU world [m, m/s] (relative to the setpoint), orientation
 * quaternion w,x,y,z body->world, angular velocity body [rad/s], actions and previous action in [-1, 1] in
 * motor order [front-right, back-right, back-left, front-left].
 */
#ifndef RAPTOR_POLICY_H
#define RAPTOR_POLICY_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#include "raptor_schema.h" /* dimensions, reset value, tolerances, motor maps: generated from raptor.conventions */

#define RAPTOR_TIMING_WINDOW 100

/* Weights, laid out as raptor.policy.network.PARAMETER_LAYOUT (row-major, out x in). */
typedef struct {
    float input_weight[RAPTOR_HIDDEN_DIM][RAPTOR_INPUT_DIM];
    float input_bias[RAPTOR_HIDDEN_DIM];
    float gru_weight_ih[RAPTOR_GATES_DIM][RAPTOR_HIDDEN_DIM];
    float gru_weight_hh[RAPTOR_GATES_DIM][RAPTOR_HIDDEN_DIM];
    float gru_bias_ih[RAPTOR_GATES_DIM];
    float gru_bias_hh[RAPTOR_GATES_DIM];
    float gru_h0[RAPTOR_HIDDEN_DIM];
    float output_weight[RAPTOR_OUTPUT_DIM][RAPTOR_HIDDEN_DIM];
    float output_bias[RAPTOR_OUTPUT_DIM];
} raptor_weights_t;

typedef struct {
    float position[3];         /* m, FLU world, relative to the setpoint */
    float orientation[4];      /* w, x, y, z, body -> world */
    float linear_velocity[3];  /* m/s, FLU world, relative to the setpoint */
    float angular_velocity[3]; /* rad/s, body */
    float previous_action[4];  /* last commanded action, [-1, 1] */
} raptor_observation_t;

typedef struct {
    float action[RAPTOR_OUTPUT_DIM]; /* [-1, 1], motor order FR, BR, BL, FL */
} raptor_action_t;

/* Heading governor constants (the exported weights header defines RAPTOR_HEADING from the policy file). */
typedef struct {
    uint32_t enabled;         /* 0: the network sees the world frame, as the published policy */
    float cos_step, sin_step; /* the largest turn of the reference heading per native step (rate x 10 ms) */
    float cos_lead, sin_lead; /* the largest heading error the network is shown */
} raptor_heading_t;

/* Setpoint-acceleration lead (raptor.policy.feedforward; the exported weights header defines RAPTOR_LEAD from the
 * policy file): the position error the network sees is p - p_des - clamp(a_des / k, +-max_lead_m) per axis. */
typedef struct {
    uint32_t enabled;  /* 0: acceleration setpoints are ignored */
    float inv_gain_s2; /* 1 / k (s^2) */
    float max_lead_m;  /* the largest lead per axis, m */
} raptor_lead_t;

/* Status bits returned by raptor_policy_control. */
#define RAPTOR_STATUS_OK 0u
#define RAPTOR_STATUS_NATIVE_STEP (1u << 0)       /* this call committed the GRU state */
#define RAPTOR_STATUS_INPUT_INVALID (1u << 1)     /* NaN/inf input: safe action returned, state untouched */
#define RAPTOR_STATUS_TIMESTAMP_INVALID (1u << 2) /* time went backwards */
#define RAPTOR_STATUS_TIMING_JITTER (1u << 3)     /* a call interval in the last window outside [0.8, 1.2] x nominal */
#define RAPTOR_STATUS_TIMING_BIAS (1u << 4)       /* mean call interval of the last window outside [0.8, 1.2] x */
#define RAPTOR_STATUS_NOT_INITIALIZED (1u << 5)   /* raptor_policy_init was not called */
#define RAPTOR_STATUS_OUTPUT_INVALID (1u << 6)    /* the network gave NaN/inf: safe action, GRU state back to h0 */

typedef struct {
    const raptor_weights_t *weights;
    uint32_t native_every;          /* N > 0: every N-th call is native; 0: native when >= 10 ms elapsed */
    uint64_t control_interval_ns;   /* nominal call interval for the timing checks (< 4.29 s); 0 disables them */
    uint32_t interval_lo_ns;        /* 0.8 x nominal */
    uint32_t interval_hi_ns;        /* 1.2 x nominal */
    uint64_t window_lo_ns;          /* 0.8 x nominal x RAPTOR_TIMING_WINDOW */
    uint64_t window_hi_ns;          /* 1.2 x nominal x RAPTOR_TIMING_WINDOW */
    float safe_action[RAPTOR_OUTPUT_DIM];
    float hidden[RAPTOR_HIDDEN_DIM]; /* committed GRU state */
    float history[RAPTOR_OUTPUT_DIM];
    uint32_t calls;
    uint32_t calls_since_native;
    uint64_t last_timestamp_ns;
    uint64_t last_native_ns;
    uint32_t window_count;
    uint64_t window_sum_ns;
    uint32_t window_jitter;
    uint32_t timing_flags; /* flags of the last complete window */
    uint32_t initialized;
    raptor_heading_t heading;
    float heading_setpoint[2]; /* unit (cos, sin) of the yaw setpoint, world; (1, 0) after init */
    float heading_ref[2];      /* committed reference heading */
    float heading_hold[2];     /* the heading at the first call after the reset: held while no setpoint is given */
    uint32_t heading_valid;    /* heading_ref and heading_hold set since the last reset */
    uint32_t heading_given;    /* a yaw setpoint was given since the last reset */
    raptor_lead_t lead;
    float acceleration_setpoint[3]; /* m/s^2, FLU world; 0 after a reset */
} raptor_policy_t;

/* Configure: weights (kept by pointer), native step rule and nominal call interval. Safe action: all -1. */
void raptor_policy_init(raptor_policy_t *p, const raptor_weights_t *weights, uint32_t native_every,
                        uint64_t control_interval_ns);
/* The heading governor (NULL or enabled == 0: off). Call after init; kept across resets. */
void raptor_policy_set_heading(raptor_policy_t *p, const raptor_heading_t *heading);
/* The yaw setpoint as (cos, sin) of the angle about world z (FLU: 0 = facing x, counter-clockwise from above).
 * Normalized here; a non-finite or zero pair is ignored (the previous setpoint stays). Until one is given after a
 * reset, the heading of the first call after the reset is held. */
void raptor_policy_set_yaw_setpoint(raptor_policy_t *p, float cos_yaw, float sin_yaw);
/* The setpoint-acceleration lead (NULL or enabled == 0: off). Call after init; kept across resets. */
void raptor_policy_set_lead(raptor_policy_t *p, const raptor_lead_t *lead);
/* The setpoint's acceleration (m/s^2, FLU world) where the setpoint carries one (PX4 trajectory_setpoint
 * .acceleration, the Crazyflie commander's); a non-finite value sets 0 (no lead). Cleared by a reset. */
void raptor_policy_set_acceleration_setpoint(raptor_policy_t *p, float ax, float ay, float az);
/* The yaw setpoint <- the heading of orientation q (w, x, y, z body -> world): hold the heading of the moment (e.g.
 * on engagement, where the setpoint has no yaw). Ignored when the body x axis is vertical. */
void raptor_policy_hold_heading(raptor_policy_t *p, const float q[4]);
/* Start a new flight: h <- h0, history <- 0.32, counters cleared, reference heading <- the vehicle's at the next
 * call, which is also held until a yaw setpoint is given. */
void raptor_policy_reset(raptor_policy_t *p);
/* One control call at time timestamp_ns (monotonic, 64-bit). Writes the action; returns status bits. */
uint32_t raptor_policy_control(raptor_policy_t *p, uint64_t timestamp_ns, const raptor_observation_t *obs,
                               raptor_action_t *out);
/* The raw network step: input (22), hidden (16) -> hidden_out (16), output (4) unclamped. */
void raptor_policy_forward(const raptor_weights_t *w, const float input[RAPTOR_INPUT_DIM],
                           const float hidden[RAPTOR_HIDDEN_DIM], float hidden_out[RAPTOR_HIDDEN_DIM],
                           float output[RAPTOR_OUTPUT_DIM]);
/* Replay a stored sequence (steps x batch, network semantics, h0 at step 0); returns the max abs error. */
float raptor_policy_self_test(const raptor_weights_t *w, const float *inputs, const float *outputs, uint32_t steps,
                              uint32_t batch);

#ifdef __cplusplus
}
#endif
#endif /* RAPTOR_POLICY_H */
