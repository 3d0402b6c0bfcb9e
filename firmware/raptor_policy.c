/* raptor_policy: see raptor_policy.h. C99, no heap, no recursion. */
#include "raptor_policy.h"

#include <string.h>

#define RESET_HISTORY RAPTOR_RESET_HISTORY

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

/* false for NaN and +-inf: the exponent bits, so it holds under -ffast-math and needs no float equality
 * (PX4 builds with -Wfloat-equal) */
static int finite_f(float x) {
    uint32_t bits;
    memcpy(&bits, &x, sizeof bits);
    return (bits & 0x7f800000u) != 0x7f800000u;
}

/* 1/sqrt(x) for x > 0 without libm: the bit-level first guess and three Newton steps (float precision). */
static float inv_sqrt(float x) {
    uint32_t bits;
    float y;
    memcpy(&bits, &x, sizeof bits);
    bits = 0x5f375a86u - (bits >> 1);
    memcpy(&y, &bits, sizeof y);
    y = y * (1.5f - 0.5f * x * y * y);
    y = y * (1.5f - 0.5f * x * y * y);
    y = y * (1.5f - 0.5f * x * y * y);
    return y;
}

/* The reference-heading frame (raptor.policy.heading.HeadingFrame.apply, the same arithmetic): turns p (input 0-2),
 * v (12-14) and the rows 0 and 1 of R (3-8) by -psi_ref about world z; commits psi_ref on native calls. */
static void heading_frame(raptor_policy_t *p, float input[RAPTOR_INPUT_DIM], uint32_t native) {
    const raptor_heading_t *g = &p->heading;
    const float hx = input[3], hy = input[6]; /* R00, R10: the body x axis in the world x-y plane */
    const float n2 = hx * hx + hy * hy;
    const int has = n2 > RAPTOR_HEADING_MIN_NORM2;
    const float inv = has ? inv_sqrt(n2) : 1.0f;
    const float h0 = hx * inv, h1 = hy * inv;
    float hold0 = 1.0f, hold1 = 0.0f, sp0, sp1, r0, r1, rc, rs, sgn, t0, n;
    int k;
    if (p->heading_valid) { /* the heading held while no setpoint is given: the first call's after the reset */
        hold0 = p->heading_hold[0]; hold1 = p->heading_hold[1];
    } else if (has) {
        hold0 = h0; hold1 = h1;
    }
    sp0 = p->heading_given ? p->heading_setpoint[0] : hold0;
    sp1 = p->heading_given ? p->heading_setpoint[1] : hold1;
    if (p->heading_valid) {
        r0 = p->heading_ref[0]; r1 = p->heading_ref[1];
    } else if (has) {
        r0 = h0; r1 = h1;
    } else {
        r0 = sp0; r1 = sp1;
    }
    /* turn toward the setpoint by at most one step */
    rc = sp0 * r0 + sp1 * r1;
    rs = sp1 * r0 - sp0 * r1;
    if (rc >= g->cos_step) {
        r0 = sp0; r1 = sp1;
    } else {
        sgn = rs >= 0.0f ? 1.0f : -1.0f;
        t0 = r0 * g->cos_step - r1 * (sgn * g->sin_step);
        r1 = r0 * (sgn * g->sin_step) + r1 * g->cos_step;
        r0 = t0;
    }
    /* stay within the lead limit of the vehicle's heading */
    rc = r0 * h0 + r1 * h1;
    rs = r1 * h0 - r0 * h1;
    if (has && rc < g->cos_lead) {
        sgn = rs >= 0.0f ? 1.0f : -1.0f;
        r0 = h0 * g->cos_lead - h1 * (sgn * g->sin_lead);
        r1 = h0 * (sgn * g->sin_lead) + h1 * g->cos_lead;
    }
    n = 1.5f - 0.5f * (r0 * r0 + r1 * r1); /* back to unit length (one Newton step) */
    r0 *= n;
    r1 *= n;
    if (native) {
        p->heading_ref[0] = r0;
        p->heading_ref[1] = r1;
        p->heading_hold[0] = hold0;
        p->heading_hold[1] = hold1;
        p->heading_valid = 1u;
    }
    { /* (x, y) pairs: p, v, and R's rows 0 and 1 per column */
        static const uint8_t pairs[5][2] = {{0, 1}, {12, 13}, {3, 6}, {4, 7}, {5, 8}};
        for (k = 0; k < 5; k++) {
            const float x = input[pairs[k][0]], y = input[pairs[k][1]];
            input[pairs[k][0]] = r0 * x + r1 * y;
            input[pairs[k][1]] = r0 * y - r1 * x;
        }
    }
}

#ifndef RAPTOR_EXTERNAL_FORWARD
/* out[r] = bias[r] + sum_j w[r][j] x[j], accumulated in j order (the same order on every build). */
#if defined(__ARM_ARCH_7EM__) && defined(__ARM_FP) && !defined(RAPTOR_PORTABLE_C)
/* Cortex-M4F/M7: x held in s0-s15 (s0-s21), weights streamed with vldmia, one vmla per weight. */
static void matvec16(const float *w, const float *x, const float *bias, float *out, uint32_t rows) {
    __asm__ volatile(
        "vldmia %[x], {s0-s15}\n\t"
        "1:\n\t"
        "vldmia %[b]!, {s24}\n\t"
        "vldmia %[w]!, {s16-s23}\n\t"
        "vmla.f32 s24, s16, s0\n\t"
        "vmla.f32 s24, s17, s1\n\t"
        "vmla.f32 s24, s18, s2\n\t"
        "vmla.f32 s24, s19, s3\n\t"
        "vmla.f32 s24, s20, s4\n\t"
        "vmla.f32 s24, s21, s5\n\t"
        "vmla.f32 s24, s22, s6\n\t"
        "vmla.f32 s24, s23, s7\n\t"
        "vldmia %[w]!, {s16-s23}\n\t"
        "vmla.f32 s24, s16, s8\n\t"
        "vmla.f32 s24, s17, s9\n\t"
        "vmla.f32 s24, s18, s10\n\t"
        "vmla.f32 s24, s19, s11\n\t"
        "vmla.f32 s24, s20, s12\n\t"
        "vmla.f32 s24, s21, s13\n\t"
        "vmla.f32 s24, s22, s14\n\t"
        "vmla.f32 s24, s23, s15\n\t"
        "vstmia %[o]!, {s24}\n\t"
        "subs %[n], %[n], #1\n\t"
        "bne 1b\n\t"
        : [w] "+r"(w), [b] "+r"(bias), [o] "+r"(out), [n] "+r"(rows)
        : [x] "r"(x)
        : "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11", "s12", "s13", "s14", "s15", "s16", "s17", "s18", "s19", "s20", "s21", "s22", "s23", "s24", "memory", "cc");
}

static void matvec22(const float *w, const float *x, const float *bias, float *out, uint32_t rows) {
    __asm__ volatile(
        "vldmia %[x], {s0-s21}\n\t"
        "1:\n\t"
        "vldmia %[b]!, {s30}\n\t"
        "vldmia %[w]!, {s22-s29}\n\t"
        "vmla.f32 s30, s22, s0\n\t"
        "vmla.f32 s30, s23, s1\n\t"
        "vmla.f32 s30, s24, s2\n\t"
        "vmla.f32 s30, s25, s3\n\t"
        "vmla.f32 s30, s26, s4\n\t"
        "vmla.f32 s30, s27, s5\n\t"
        "vmla.f32 s30, s28, s6\n\t"
        "vmla.f32 s30, s29, s7\n\t"
        "vldmia %[w]!, {s22-s29}\n\t"
        "vmla.f32 s30, s22, s8\n\t"
        "vmla.f32 s30, s23, s9\n\t"
        "vmla.f32 s30, s24, s10\n\t"
        "vmla.f32 s30, s25, s11\n\t"
        "vmla.f32 s30, s26, s12\n\t"
        "vmla.f32 s30, s27, s13\n\t"
        "vmla.f32 s30, s28, s14\n\t"
        "vmla.f32 s30, s29, s15\n\t"
        "vldmia %[w]!, {s22-s27}\n\t"
        "vmla.f32 s30, s22, s16\n\t"
        "vmla.f32 s30, s23, s17\n\t"
        "vmla.f32 s30, s24, s18\n\t"
        "vmla.f32 s30, s25, s19\n\t"
        "vmla.f32 s30, s26, s20\n\t"
        "vmla.f32 s30, s27, s21\n\t"
        "vstmia %[o]!, {s30}\n\t"
        "subs %[n], %[n], #1\n\t"
        "bne 1b\n\t"
        : [w] "+r"(w), [b] "+r"(bias), [o] "+r"(out), [n] "+r"(rows)
        : [x] "r"(x)
        : "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11", "s12", "s13", "s14", "s15", "s16", "s17", "s18", "s19", "s20", "s21", "s22", "s23", "s24", "s25", "s26", "s27", "s28", "s29", "s30", "memory", "cc");
}
#else
static void matvec(const float *w, const float *x, const float *bias, float *out, uint32_t rows, uint32_t cols) {
    uint32_t r, j;
    for (r = 0; r < rows; r++, w += cols) {
        float acc = bias[r];
        for (j = 0; j < cols; j++) acc += w[j] * x[j];
        out[r] = acc;
    }
}
#define matvec16(w, x, b, o, n) matvec((w), (x), (b), (o), (n), 16u)
#define matvec22(w, x, b, o, n) matvec((w), (x), (b), (o), (n), 22u)
#endif

void raptor_policy_forward(const raptor_weights_t *w, const float input[RAPTOR_INPUT_DIM],
                           const float hidden[RAPTOR_HIDDEN_DIM], float hidden_out[RAPTOR_HIDDEN_DIM],
                           float output[RAPTOR_OUTPUT_DIM]) {
    /* Stack kept small for the firmware tasks that call this (about 0.3 KB): the hidden-to-hidden gates are
     * computed one 16-row block (r, z, n) at a time into gh, and the sums are the same float operations in the same
     * order as with a full 48-row buffer, so every build gives the same bits. */
    float x[RAPTOR_HIDDEN_DIM], h[RAPTOR_HIDDEN_DIM], gh[RAPTOR_HIDDEN_DIM];
    float gi[RAPTOR_GATES_DIM];
    int i;
    matvec22(&w->input_weight[0][0], input, w->input_bias, x, RAPTOR_HIDDEN_DIM);
    for (i = 0; i < RAPTOR_HIDDEN_DIM; i++) x[i] = x[i] > 0.0f ? x[i] : 0.0f;
    matvec16(&w->gru_weight_ih[0][0], x, w->gru_bias_ih, gi, RAPTOR_GATES_DIM);
    matvec16(&w->gru_weight_hh[0][0], hidden, w->gru_bias_hh, gh, RAPTOR_HIDDEN_DIM); /* r block */
    for (i = 0; i < RAPTOR_HIDDEN_DIM; i++) gi[i] = fast_sigmoid(gi[i] + gh[i]);       /* gi[0:16] <- r */
    matvec16(&w->gru_weight_hh[16][0], hidden, w->gru_bias_hh + 16, gh, RAPTOR_HIDDEN_DIM); /* z block */
    for (i = 0; i < RAPTOR_HIDDEN_DIM; i++) gi[i + 16] = fast_sigmoid(gi[i + 16] + gh[i]); /* gi[16:32] <- z */
    matvec16(&w->gru_weight_hh[32][0], hidden, w->gru_bias_hh + 32, gh, RAPTOR_HIDDEN_DIM); /* n block */
    for (i = 0; i < RAPTOR_HIDDEN_DIM; i++) {
        const float r = gi[i], z = gi[i + 16];
        const float n = fast_tanh(gi[i + 32] + r * gh[i]);
        h[i] = z * hidden[i] + (1.0f - z) * n;
    }
    matvec16(&w->output_weight[0][0], h, w->output_bias, output, RAPTOR_OUTPUT_DIM);
    for (i = 0; i < RAPTOR_HIDDEN_DIM; i++) hidden_out[i] = h[i];
}
#endif

void raptor_policy_init(raptor_policy_t *p, const raptor_weights_t *weights, uint32_t native_every,
                        uint64_t control_interval_ns) {
    int i;
    p->weights = weights;
    p->native_every = native_every;
    p->control_interval_ns = control_interval_ns;
    p->interval_lo_ns = (uint32_t)control_interval_ns / 5u * 4u; /* 32-bit: no 64-bit division on the MCU */
    p->interval_hi_ns = (uint32_t)control_interval_ns / 5u * 6u;
    p->window_lo_ns = (uint64_t)p->interval_lo_ns * RAPTOR_TIMING_WINDOW;
    p->window_hi_ns = (uint64_t)p->interval_hi_ns * RAPTOR_TIMING_WINDOW;
    for (i = 0; i < RAPTOR_OUTPUT_DIM; i++) p->safe_action[i] = -1.0f;
    p->heading.enabled = 0u;
    p->lead.enabled = 0u;
    p->heading_setpoint[0] = 1.0f;
    p->heading_setpoint[1] = 0.0f;
    p->initialized = 1u;
    raptor_policy_reset(p);
}

void raptor_policy_set_heading(raptor_policy_t *p, const raptor_heading_t *heading) {
    if (heading && heading->enabled) {
        p->heading = *heading;
    } else {
        p->heading.enabled = 0u;
    }
    p->heading_valid = 0u;
}

void raptor_policy_set_lead(raptor_policy_t *p, const raptor_lead_t *lead) {
    if (lead && lead->enabled && finite_f(lead->inv_gain_s2) && finite_f(lead->max_lead_m)) {
        p->lead = *lead;
    } else {
        p->lead.enabled = 0u;
    }
}

void raptor_policy_set_acceleration_setpoint(raptor_policy_t *p, float ax, float ay, float az) {
    const float a[3] = {ax, ay, az};
    int i;
    for (i = 0; i < 3; i++) p->acceleration_setpoint[i] = finite_f(a[i]) ? a[i] : 0.0f;
}

void raptor_policy_hold_heading(raptor_policy_t *p, const float q[4]) {
    /* R00 and R10 of R(q): the body x axis in the world x-y plane */
    raptor_policy_set_yaw_setpoint(p, 1.0f - 2.0f * (q[2] * q[2] + q[3] * q[3]), 2.0f * (q[1] * q[2] + q[0] * q[3]));
}

void raptor_policy_set_yaw_setpoint(raptor_policy_t *p, float cos_yaw, float sin_yaw) {
    const float n2 = cos_yaw * cos_yaw + sin_yaw * sin_yaw;
    if (!finite_f(n2) || !(n2 > RAPTOR_HEADING_MIN_NORM2)) return;
    {
        const float inv = inv_sqrt(n2);
        p->heading_setpoint[0] = cos_yaw * inv;
        p->heading_setpoint[1] = sin_yaw * inv;
        p->heading_given = 1u;
    }
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
    p->heading_valid = 0u;
    p->heading_given = 0u;
    for (i = 0; i < 3; i++) p->acceleration_setpoint[i] = 0.0f;
}

static uint32_t update_timing(raptor_policy_t *p, uint64_t timestamp_ns) {
    uint64_t dt;
    if (p->calls == 0) return 0;
    if (timestamp_ns < p->last_timestamp_ns) return RAPTOR_STATUS_TIMESTAMP_INVALID;
    if (p->control_interval_ns == 0) return 0;
    dt = timestamp_ns - p->last_timestamp_ns;
    if (dt < p->interval_lo_ns || dt > p->interval_hi_ns) p->window_jitter = 1;
    p->window_sum_ns += dt;
    if (++p->window_count == RAPTOR_TIMING_WINDOW) {
        uint64_t sum = p->window_sum_ns;
        p->timing_flags = (p->window_jitter ? RAPTOR_STATUS_TIMING_JITTER : 0u) |
                          ((sum < p->window_lo_ns || sum > p->window_hi_ns) ? RAPTOR_STATUS_TIMING_BIAS : 0u);
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
    for (i = 0; i < RAPTOR_OUTPUT_DIM; i++) /* running mean of the previous actions since the last native call */
        p->history[i] = c == 0 ? obs->previous_action[i]
                               : (p->history[i] * (float)c + obs->previous_action[i]) / (float)(c + 1u);
    p->calls_since_native = c + 1u;
    qw = obs->orientation[0]; qx = obs->orientation[1]; qy = obs->orientation[2]; qz = obs->orientation[3];
    { /* R(q) row-major from doubled components: 2(ab) = a(2b) exactly, so this equals the textbook form bit for bit */
        const float x2 = qx + qx, y2 = qy + qy, z2 = qz + qz;
        const float xx = qx * x2, yy = qy * y2, zz = qz * z2, xy = qx * y2, xz = qx * z2, yz = qy * z2;
        const float wx = qw * x2, wy = qw * y2, wz = qw * z2;
        input[3] = 1.0f - (yy + zz); input[4] = xy - wz; input[5] = xz + wy;
        input[6] = xy + wz; input[7] = 1.0f - (xx + zz); input[8] = yz - wx;
        input[9] = xz - wy; input[10] = yz + wx; input[11] = 1.0f - (xx + yy);
    }
    input[0] = obs->position[0]; input[1] = obs->position[1]; input[2] = obs->position[2];
    for (i = 0; i < 3; i++) {
        input[12 + i] = obs->linear_velocity[i];
        input[15 + i] = obs->angular_velocity[i];
    }
    for (i = 0; i < RAPTOR_OUTPUT_DIM; i++) input[18 + i] = p->history[i];
    if (p->lead.enabled) { /* the setpoint's acceleration leads the position error (before the heading frame) */
        for (i = 0; i < 3; i++) {
            float lead = p->acceleration_setpoint[i] * p->lead.inv_gain_s2;
            lead = lead > p->lead.max_lead_m ? p->lead.max_lead_m : lead;
            lead = lead < -p->lead.max_lead_m ? -p->lead.max_lead_m : lead;
            input[i] -= lead;
        }
    }
    if (p->heading.enabled) heading_frame(p, input, native);
    raptor_policy_forward(p->weights, input, p->hidden, h_new, y);
    for (i = 0; i < RAPTOR_HIDDEN_DIM; i++) { /* output guard: a non-finite result never reaches a motor */
        if (!finite_f(h_new[i]) || (i < RAPTOR_OUTPUT_DIM && !finite_f(y[i]))) {
            for (i = 0; i < RAPTOR_OUTPUT_DIM; i++) {
                out->action[i] = p->safe_action[i];
                p->history[i] = RESET_HISTORY;
            }
            for (i = 0; i < RAPTOR_HIDDEN_DIM; i++) p->hidden[i] = p->weights->gru_h0[i];
            p->heading_valid = 0u;
            p->calls_since_native = 0;
            p->last_timestamp_ns = timestamp_ns;
            p->calls++;
            return status | RAPTOR_STATUS_OUTPUT_INVALID | p->timing_flags;
        }
    }
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
    /* One sequence at a time (they are independent), so one hidden state: the self-test runs in the firmware's
     * small system task (Crazyflie: 1,200 B). */
    float h[RAPTOR_HIDDEN_DIM];
    float y[RAPTOR_OUTPUT_DIM];
    float worst = 0.0f;
    uint32_t t, b;
    int i;
    for (b = 0; b < batch; b++) {
        for (i = 0; i < RAPTOR_HIDDEN_DIM; i++) h[i] = w->gru_h0[i];
        for (t = 0; t < steps; t++) {
            const float *in = inputs + (t * batch + b) * RAPTOR_INPUT_DIM;
            const float *ref = outputs + (t * batch + b) * RAPTOR_OUTPUT_DIM;
            raptor_policy_forward(w, in, h, h, y);
            for (i = 0; i < RAPTOR_OUTPUT_DIM; i++) {
                float d = y[i] - ref[i];
                if (d < 0.0f) d = -d;
                if (!(d <= worst)) worst = d; /* also catches NaN */
            }
        }
    }
    return worst;
}
