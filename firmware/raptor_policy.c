/* raptor_policy: see raptor_policy.h. C99, no heap, no recursion. */
#include "raptor_policy.h"

#define RESET_HISTORY (2.0f * 0.66f - 1.0f)

#ifndef RAPTOR_EXTERNAL_FORWARD /* benchmarks swap in a naive forward pass as a baseline */
/* tanh as a rational minimax approximation (max abs error 3.4e-7 in float32), no libm. */
static float fast_tanh(float x) {
    const float limit = 7.90531110763549805f;
    float x2, p, q;
    if (x > limit) x = limit;
    if (x < -limit) x = -limit;
    x2 = x * x; /* the rational form is exact to float precision near 0 as well */
    p = -2.76076847742355e-16f;
    p = x2 * p + 2.00018790482477e-13f;
    p = x2 * p + -8.60467152213735e-11f;
    p = x2 * p + 5.12229709037114e-08f;
    p = x2 * p + 1.48572235717979e-05f;
    p = x2 * p + 6.37261928875436e-04f;
    p = x2 * p + 4.89352455891786e-03f;
    p = x * p;
    q = 1.19825839466702e-06f;
    q = x2 * q + 1.18534705686654e-04f;
    q = x2 * q + 2.26843463243900e-03f;
    q = x2 * q + 4.89352518554385e-03f;
    return p / q;
}

static float fast_sigmoid(float x) { return 0.5f * fast_tanh(0.5f * x) + 0.5f; }

#endif

static int finite_f(float x) { return (x == x) && (x - x == 0.0f); } /* false for NaN and +-inf */

#ifndef RAPTOR_EXTERNAL_FORWARD
void raptor_policy_forward(const raptor_weights_t *w, const float input[RAPTOR_INPUT_DIM],
                           const float hidden[RAPTOR_HIDDEN_DIM], float hidden_out[RAPTOR_HIDDEN_DIM],
                           float output[RAPTOR_OUTPUT_DIM]) {
    float x[RAPTOR_HIDDEN_DIM];
    float h[RAPTOR_HIDDEN_DIM];
    int i, j;
    for (i = 0; i < RAPTOR_HIDDEN_DIM; i += 4) { /* 4 rows per pass: one input load feeds 4 accumulators */
        const float *r0 = w->input_weight[i], *r1 = w->input_weight[i + 1];
        const float *r2 = w->input_weight[i + 2], *r3 = w->input_weight[i + 3];
        float a0 = w->input_bias[i], a1 = w->input_bias[i + 1], a2 = w->input_bias[i + 2], a3 = w->input_bias[i + 3];
        for (j = 0; j < RAPTOR_INPUT_DIM; j++) {
            const float in = input[j];
            a0 += r0[j] * in;
            a1 += r1[j] * in;
            a2 += r2[j] * in;
            a3 += r3[j] * in;
        }
        x[i] = a0 > 0.0f ? a0 : 0.0f;
        x[i + 1] = a1 > 0.0f ? a1 : 0.0f;
        x[i + 2] = a2 > 0.0f ? a2 : 0.0f;
        x[i + 3] = a3 > 0.0f ? a3 : 0.0f;
    }
    for (i = 0; i < RAPTOR_HIDDEN_DIM; i++) {
        const float *wr_i = w->gru_weight_ih[i], *wz_i = w->gru_weight_ih[i + 16], *wn_i = w->gru_weight_ih[i + 32];
        const float *wr_h = w->gru_weight_hh[i], *wz_h = w->gru_weight_hh[i + 16], *wn_h = w->gru_weight_hh[i + 32];
        float r = w->gru_bias_ih[i] + w->gru_bias_hh[i];
        float z = w->gru_bias_ih[i + 16] + w->gru_bias_hh[i + 16];
        float n_i = w->gru_bias_ih[i + 32], n_h = w->gru_bias_hh[i + 32];
        float n;
        for (j = 0; j < RAPTOR_HIDDEN_DIM; j++) {
            r += wr_i[j] * x[j]; /* one multiply-accumulate each: vmla, not vmul + vmla + vadd */
            r += wr_h[j] * hidden[j];
            z += wz_i[j] * x[j];
            z += wz_h[j] * hidden[j];
            n_i += wn_i[j] * x[j];
            n_h += wn_h[j] * hidden[j];
        }
        r = fast_sigmoid(r);
        z = fast_sigmoid(z);
        n = fast_tanh(n_i + r * n_h);
        h[i] = z * hidden[i] + (1.0f - z) * n;
    }
    for (i = 0; i < RAPTOR_OUTPUT_DIM; i++) {
        float acc = w->output_bias[i];
        for (j = 0; j < RAPTOR_HIDDEN_DIM; j++) acc += w->output_weight[i][j] * h[j];
        output[i] = acc;
    }
    for (i = 0; i < RAPTOR_HIDDEN_DIM; i++) hidden_out[i] = h[i];
}
#endif

void raptor_policy_init(raptor_policy_t *p, const raptor_weights_t *weights, uint32_t native_every,
                        uint64_t control_interval_ns) {
    int i;
    p->weights = weights;
    p->native_every = native_every;
    p->control_interval_ns = control_interval_ns;
    for (i = 0; i < RAPTOR_OUTPUT_DIM; i++) p->safe_action[i] = -1.0f;
    p->initialized = 1u;
    raptor_policy_reset(p);
}

void raptor_policy_reset(raptor_policy_t *p) {
    int i;
    for (i = 0; i < RAPTOR_HIDDEN_DIM; i++) p->hidden[i] = p->weights ? p->weights->gru_h0[i] : 0.0f;
    for (i = 0; i < RAPTOR_OUTPUT_DIM; i++) p->history[i] = RESET_HISTORY;
    p->calls = 0;
    p->calls_since_native = 0;
    p->last_timestamp_ns = 0;
    p->last_native_ns = 0;
    p->window_count = 0;
    p->window_sum_ns = 0;
    p->window_jitter = 0;
    p->timing_flags = 0;
}

static uint32_t update_timing(raptor_policy_t *p, uint64_t timestamp_ns) {
    uint64_t dt, nominal = p->control_interval_ns;
    if (p->calls == 0) return 0;
    if (timestamp_ns < p->last_timestamp_ns) return RAPTOR_STATUS_TIMESTAMP_INVALID;
    if (nominal == 0) return 0;
    dt = timestamp_ns - p->last_timestamp_ns;
    if (dt * 5u < nominal * 4u || dt * 5u > nominal * 6u) p->window_jitter = 1;
    p->window_sum_ns += dt;
    if (++p->window_count == RAPTOR_TIMING_WINDOW) {
        uint64_t sum = p->window_sum_ns;
        uint64_t expected = nominal * RAPTOR_TIMING_WINDOW;
        p->timing_flags = (p->window_jitter ? RAPTOR_STATUS_TIMING_JITTER : 0u) |
                          ((sum * 5u < expected * 4u || sum * 5u > expected * 6u) ? RAPTOR_STATUS_TIMING_BIAS : 0u);
        p->window_count = 0;
        p->window_sum_ns = 0;
        p->window_jitter = 0;
    }
    return 0;
}

uint32_t raptor_policy_control(raptor_policy_t *p, uint64_t timestamp_ns, const raptor_observation_t *obs,
                               raptor_action_t *out) {
    const float *o = obs->position;
    float input[RAPTOR_INPUT_DIM];
    float h_new[RAPTOR_HIDDEN_DIM];
    float y[RAPTOR_OUTPUT_DIM];
    float qw, qx, qy, qz;
    uint32_t status, native, c;
    int i;
    if (!p->initialized || !p->weights) {
        for (i = 0; i < RAPTOR_OUTPUT_DIM; i++) out->action[i] = -1.0f;
        return RAPTOR_STATUS_NOT_INITIALIZED | RAPTOR_STATUS_INPUT_INVALID;
    }
    /* the observation struct is 17 contiguous floats */
    for (i = 0; i < 17; i++) {
        if (!finite_f(o[i])) {
            for (i = 0; i < RAPTOR_OUTPUT_DIM; i++) out->action[i] = p->safe_action[i];
            return RAPTOR_STATUS_INPUT_INVALID | p->timing_flags;
        }
    }
    status = update_timing(p, timestamp_ns);
    if (p->native_every > 0)
        native = (p->calls % p->native_every) == 0;
    else
        native = p->calls == 0 || (timestamp_ns >= p->last_native_ns &&
                                   timestamp_ns - p->last_native_ns >= RAPTOR_NATIVE_INTERVAL_NS);
    c = p->calls_since_native;
    for (i = 0; i < RAPTOR_OUTPUT_DIM; i++)
        p->history[i] = c == 0 ? obs->previous_action[i]
                               : (p->history[i] * (float)c + obs->previous_action[i]) / (float)(c + 1u);
    p->calls_since_native = c + 1u;
    qw = obs->orientation[0]; qx = obs->orientation[1]; qy = obs->orientation[2]; qz = obs->orientation[3];
    input[0] = obs->position[0]; input[1] = obs->position[1]; input[2] = obs->position[2];
    input[3] = 1.0f - 2.0f * (qy * qy + qz * qz); input[4] = 2.0f * (qx * qy - qw * qz);
    input[5] = 2.0f * (qx * qz + qw * qy); input[6] = 2.0f * (qx * qy + qw * qz);
    input[7] = 1.0f - 2.0f * (qx * qx + qz * qz); input[8] = 2.0f * (qy * qz - qw * qx);
    input[9] = 2.0f * (qx * qz - qw * qy); input[10] = 2.0f * (qy * qz + qw * qx);
    input[11] = 1.0f - 2.0f * (qx * qx + qy * qy);
    for (i = 0; i < 3; i++) {
        input[12 + i] = obs->linear_velocity[i];
        input[15 + i] = obs->angular_velocity[i];
    }
    for (i = 0; i < RAPTOR_OUTPUT_DIM; i++) input[18 + i] = p->history[i];
    raptor_policy_forward(p->weights, input, p->hidden, h_new, y);
    if (native) {
        for (i = 0; i < RAPTOR_HIDDEN_DIM; i++) p->hidden[i] = h_new[i];
        p->calls_since_native = 0;
        p->last_native_ns = timestamp_ns;
        status |= RAPTOR_STATUS_NATIVE_STEP;
    }
    for (i = 0; i < RAPTOR_OUTPUT_DIM; i++) out->action[i] = y[i] > 1.0f ? 1.0f : (y[i] < -1.0f ? -1.0f : y[i]);
    p->last_timestamp_ns = timestamp_ns;
    p->calls++;
    return status | p->timing_flags;
}

float raptor_policy_self_test(const raptor_weights_t *w, const float *inputs, const float *outputs, uint32_t steps,
                              uint32_t batch) {
    float h[8][RAPTOR_HIDDEN_DIM];
    float y[RAPTOR_OUTPUT_DIM];
    float worst = 0.0f;
    uint32_t t, b;
    int i;
    if (batch > 8u) batch = 8u;
    for (b = 0; b < batch; b++)
        for (i = 0; i < RAPTOR_HIDDEN_DIM; i++) h[b][i] = w->gru_h0[i];
    for (t = 0; t < steps; t++) {
        for (b = 0; b < batch; b++) {
            const float *in = inputs + (t * batch + b) * RAPTOR_INPUT_DIM;
            const float *ref = outputs + (t * batch + b) * RAPTOR_OUTPUT_DIM;
            raptor_policy_forward(w, in, h[b], h[b], y);
            for (i = 0; i < RAPTOR_OUTPUT_DIM; i++) {
                float d = y[i] - ref[i];
                if (d < 0.0f) d = -d;
                if (!(d <= worst)) worst = d; /* also catches NaN */
            }
        }
    }
    return worst;
}
