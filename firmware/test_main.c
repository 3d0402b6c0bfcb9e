/* Test harness for the C core on the host and on the QEMU MCUs: runs the exported self-test, replays a fixed
 * observation sequence through raptor_policy_control and prints every action as IEEE-754 bit patterns, then
 * times the inference step (ARM: SysTick under `qemu -icount shift=0`, where 1 instruction = 1 ns).
 * Exit code 0 iff the self-test passes. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "raptor_policy.h"
#include "raptor_policy_weights.h"
#include "raptor_test_sequence.h"

static raptor_policy_t policy;

static unsigned long bits(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof(u));
    return (unsigned long)u;
}

#ifdef __arm__
#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)
static void ticks_start(void) { SYST_RVR = 0x00FFFFFFu; SYST_CVR = 0u; SYST_CSR = 5u; }
static uint32_t ticks_now(void) { return SYST_CVR; }
#endif

int main(void) {
    raptor_observation_t obs;
    raptor_action_t act;
    float err = raptor_policy_self_test(&RAPTOR_WEIGHTS, &raptor_self_test_input[0][0][0],
                                        &raptor_self_test_output[0][0][0], RAPTOR_SELF_TEST_STEPS,
                                        RAPTOR_SELF_TEST_BATCH);
    uint32_t t, status;
    printf("self_test_max_error %08lx\n", bits(err));
    raptor_policy_init(&policy, &RAPTOR_WEIGHTS, RAPTOR_SEQ_NATIVE_EVERY, RAPTOR_SEQ_INTERVAL_NS);
    raptor_policy_set_heading(&policy, &RAPTOR_HEADING);
    raptor_policy_set_lead(&policy, &RAPTOR_LEAD);
    for (t = 0; t < RAPTOR_SEQ_STEPS; t++) {
        memcpy(&obs, raptor_seq_obs[t], sizeof(obs));
        status = raptor_policy_control(&policy, raptor_seq_timestamp_ns[t], &obs, &act);
        printf("step %lu %08lx %08lx %08lx %08lx %lu\n", (unsigned long)t, bits(act.action[0]), bits(act.action[1]),
               bits(act.action[2]), bits(act.action[3]), (unsigned long)status);
    }
#ifdef __arm__
    {
        uint32_t t0, t1, n = RAPTOR_SEQ_STEPS < 100u ? RAPTOR_SEQ_STEPS : 100u;
        raptor_policy_reset(&policy);
        ticks_start();
        t0 = ticks_now();
        for (t = 0; t < n; t++) {
            memcpy(&obs, raptor_seq_obs[t], sizeof(obs));
            raptor_policy_control(&policy, raptor_seq_timestamp_ns[t], &obs, &act);
        }
        t1 = ticks_now();
        printf("ticks %lu steps %lu hz %lu\n", (unsigned long)((t0 - t1) & 0x00FFFFFFu), (unsigned long)n,
               (unsigned long)SYSTICK_HZ);
    }
#endif
    printf("verdict %s\n", err <= RAPTOR_SELF_TEST_TOLERANCE ? "pass" : "FAIL");
    return err <= RAPTOR_SELF_TEST_TOLERANCE ? 0 : 1;
}
