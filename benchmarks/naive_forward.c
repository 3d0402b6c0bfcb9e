/* Baseline for benchmarks/mcu_cost.py: the forward pass as plain loops with libm expf/tanhf (what a first C port
 * looks like; the firmware notes measured ~13k instructions per step for it on the Cortex-M4F). */
#include <math.h>

#include "raptor_policy.h"

void raptor_policy_forward(const raptor_weights_t *w, const float input[RAPTOR_INPUT_DIM],
                           const float hidden[RAPTOR_HIDDEN_DIM], float hidden_out[RAPTOR_HIDDEN_DIM],
                           float output[RAPTOR_OUTPUT_DIM]) {
    float x[RAPTOR_HIDDEN_DIM], gi[RAPTOR_GATES_DIM], gh[RAPTOR_GATES_DIM], h[RAPTOR_HIDDEN_DIM];
    int i, j;
    for (i = 0; i < RAPTOR_HIDDEN_DIM; i++) {
        float acc = w->input_bias[i];
        for (j = 0; j < RAPTOR_INPUT_DIM; j++) acc += w->input_weight[i][j] * input[j];
        x[i] = acc > 0.0f ? acc : 0.0f;
    }
    for (i = 0; i < RAPTOR_GATES_DIM; i++) {
        float a = w->gru_bias_ih[i], b = w->gru_bias_hh[i];
        for (j = 0; j < RAPTOR_HIDDEN_DIM; j++) {
            a += w->gru_weight_ih[i][j] * x[j];
            b += w->gru_weight_hh[i][j] * hidden[j];
        }
        gi[i] = a;
        gh[i] = b;
    }
    for (i = 0; i < RAPTOR_HIDDEN_DIM; i++) {
        float r = 1.0f / (1.0f + expf(-(gi[i] + gh[i])));
        float z = 1.0f / (1.0f + expf(-(gi[i + 16] + gh[i + 16])));
        float n = tanhf(gi[i + 32] + r * gh[i + 32]);
        h[i] = z * hidden[i] + (1.0f - z) * n;
    }
    for (i = 0; i < RAPTOR_OUTPUT_DIM; i++) {
        float acc = w->output_bias[i];
        for (j = 0; j < RAPTOR_HIDDEN_DIM; j++) acc += w->output_weight[i][j] * h[j];
        output[i] = acc;
    }
    for (i = 0; i < RAPTOR_HIDDEN_DIM; i++) hidden_out[i] = h[i];
}
