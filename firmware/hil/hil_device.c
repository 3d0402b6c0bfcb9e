/* raptor HIL device: receives observations over a byte stream, runs the C inference core, replies with actions.
 * Platform hooks (hil_port.h): byte I/O and a microsecond clock, for the host (stdin/stdout) or the STM32 USART1. */
#include <string.h>

#include "hil_port.h"
#include "hil_protocol.h"
#include "raptor_policy.h"
#include "raptor_policy_weights.h"

static raptor_policy_t policy;
static hil_receiver_t receiver;
static uint32_t frames_bad;
static int policy_ready;

static void put_u16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put_u32(uint8_t *p, uint32_t v) { int i; for (i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static uint16_t get_u16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static uint32_t get_u32(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static void put_f32(uint8_t *p, float f) { uint32_t u; memcpy(&u, &f, 4); put_u32(p, u); }
static float get_f32(const uint8_t *p) { uint32_t u = get_u32(p); float f; memcpy(&f, &u, 4); return f; }

static void send(uint8_t type, uint16_t seq, const uint8_t *payload, size_t n) {
    uint8_t frame[HIL_MAX_FRAME];
    size_t len = hil_frame(type, seq, payload, n, frame);
    hil_port_write(frame, len);
}

static void send_status(uint16_t seq, uint16_t code, uint16_t detail) {
    uint8_t p[HIL_STATUS_LEN];
    put_u16(p, code);
    put_u16(p + 2, detail);
    put_u32(p + 4, frames_bad);
    send(HIL_STATUS, seq, p, sizeof(p));
}

static void handle(const uint8_t *packet, size_t n) {
    uint8_t type = packet[1];
    uint16_t seq = get_u16(packet + 2);
    const uint8_t *pl = packet + 4;
    size_t len = n - 4u;
    if (type == HIL_HELLO && len == HIL_HELLO_LEN && get_u32(pl) == HIL_MAGIC) {
        uint8_t p[HIL_HELLO_ACK_LEN];
        float err = raptor_policy_self_test(&RAPTOR_WEIGHTS, &raptor_self_test_input[0][0][0],
                                            &raptor_self_test_output[0][0][0], RAPTOR_SELF_TEST_STEPS,
                                            RAPTOR_SELF_TEST_BATCH);
        put_u16(p, HIL_VERSION);
        put_u16(p + 2, 0);
        put_u32(p + 4, RAPTOR_NUM_PARAMETERS);
        put_f32(p + 8, err);
        put_u32(p + 12, frames_bad);
        { /* which policy flies: the first 16 hex digits of its file's sha256 ("n/a" padded with zeros) */
            static const char id[] = RAPTOR_POLICY_SOURCE_SHA256;
            size_t i;
            for (i = 0; i < HIL_POLICY_ID_LEN; i++) p[16 + i] = (uint8_t)(i < sizeof(id) - 1u ? id[i] : 0);
        }
        send(HIL_HELLO_ACK, seq, p, sizeof(p));
    } else if (type == HIL_RESET && len == HIL_RESET_LEN) {
        uint8_t p[HIL_RESET_ACK_LEN];
        uint16_t native_every = get_u16(pl);
        raptor_policy_init(&policy, &RAPTOR_WEIGHTS, native_every, (uint64_t)get_u32(pl + 4) * 1000u);
        raptor_policy_set_heading(&policy, &RAPTOR_HEADING);
        raptor_policy_set_lead(&policy, &RAPTOR_LEAD); /* no acceleration crosses the link: no lead */
        policy_ready = 1;
        put_u32(p, 0);
        send(HIL_RESET_ACK, seq, p, sizeof(p));
    } else if (type == HIL_OBS && len == HIL_OBS_LEN) {
        raptor_observation_t obs;
        raptor_action_t act;
        uint8_t p[HIL_ACTION_LEN];
        uint64_t ts = (uint64_t)get_u32(pl) | ((uint64_t)get_u32(pl + 4) << 32);
        float *f = obs.position;
        uint32_t t0, status;
        int i;
        if (!policy_ready) {
            send_status(seq, HIL_STATUS_NOT_RESET, 0);
            return;
        }
        for (i = 0; i < 17; i++) f[i] = get_f32(pl + 8 + 4 * i);
        t0 = hil_port_micros();
        status = raptor_policy_control(&policy, ts, &obs, &act);
        t0 = hil_port_micros() - t0;
        for (i = 0; i < 4; i++) put_f32(p + 4 * i, act.action[i]);
        put_u32(p + 16, t0);
        put_u32(p + 20, status);
        send(HIL_ACTION, seq, p, sizeof(p));
    } else if (type == HIL_HELLO || type == HIL_RESET || type == HIL_OBS) {
        frames_bad++;
        send_status(seq, HIL_STATUS_BAD_LENGTH, (uint16_t)len);
    } else {
        frames_bad++;
        send_status(seq, HIL_STATUS_UNKNOWN_TYPE, type);
    }
}

int main(void) {
    uint8_t packet[HIL_MAX_PACKET];
    size_t n;
    hil_port_init();
    send_status(0, HIL_STATUS_BOOT, 0);
    for (;;) {
        int byte = hil_port_read_byte();
        int r;
        if (byte < 0) return 0; /* host build: end of input */
        r = hil_receiver_feed(&receiver, (uint8_t)byte, packet, &n);
        if (r > 0)
            handle(packet, n);
        else if (r < 0)
            frames_bad++;
    }
}
