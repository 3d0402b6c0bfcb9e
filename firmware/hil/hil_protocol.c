/* raptor HIL protocol: CRC-32 (IEEE, reflected, as zlib), COBS, frame receiver. See hil_protocol.h. */
#include "hil_protocol.h"

uint32_t hil_crc32(const uint8_t *data, size_t n) {
    uint32_t crc = 0xFFFFFFFFu;
    size_t i;
    int k;
    for (i = 0; i < n; i++) {
        crc ^= data[i];
        for (k = 0; k < 8; k++) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
    }
    return ~crc;
}

size_t hil_cobs_encode(const uint8_t *in, size_t n, uint8_t *out) {
    size_t read = 0, write = 1, code_at = 0;
    uint8_t code = 1;
    while (read < n) {
        if (in[read] == 0) {
            out[code_at] = code;
            code = 1;
            code_at = write++;
        } else {
            out[write++] = in[read];
            if (++code == 0xFF) {
                out[code_at] = code;
                code = 1;
                code_at = write++;
            }
        }
        read++;
    }
    out[code_at] = code;
    return write;
}

int hil_cobs_decode(const uint8_t *in, size_t n, uint8_t *out, size_t cap) {
    size_t read = 0, write = 0;
    while (read < n) {
        uint8_t code = in[read++];
        uint8_t i;
        if (code == 0) return -1;
        for (i = 1; i < code; i++) {
            if (read >= n || write >= cap || in[read] == 0) return -1;
            out[write++] = in[read++];
        }
        if (code != 0xFF && read < n) {
            if (write >= cap) return -1;
            out[write++] = 0;
        }
    }
    return (int)write;
}

int hil_receiver_feed(hil_receiver_t *r, uint8_t byte, uint8_t packet[HIL_MAX_PACKET], size_t *plen) {
    int n;
    uint32_t crc;
    if (byte != 0) {
        if (r->len < sizeof(r->raw))
            r->raw[r->len++] = byte;
        else
            r->overflow = 1;
        return 0;
    }
    if (r->len == 0 && !r->overflow) return 0; /* empty frame: idle delimiters */
    n = r->overflow ? -1 : hil_cobs_decode(r->raw, r->len, packet, HIL_MAX_PACKET);
    r->len = 0;
    r->overflow = 0;
    if (n < 8) return -1;
    crc = (uint32_t)packet[n - 4] | ((uint32_t)packet[n - 3] << 8) | ((uint32_t)packet[n - 2] << 16) |
          ((uint32_t)packet[n - 1] << 24);
    if (crc != hil_crc32(packet, (size_t)n - 4u) || packet[0] != HIL_VERSION) return -1;
    *plen = (size_t)n - 4u;
    return 1;
}

size_t hil_frame(uint8_t type, uint16_t seq, const uint8_t *payload, size_t n, uint8_t out[HIL_MAX_FRAME]) {
    uint8_t packet[HIL_MAX_PACKET];
    size_t i, len;
    uint32_t crc;
    if (n + 8u > HIL_MAX_PACKET) n = HIL_MAX_PACKET - 8u;
    packet[0] = HIL_VERSION;
    packet[1] = type;
    packet[2] = (uint8_t)(seq & 0xFFu);
    packet[3] = (uint8_t)(seq >> 8);
    for (i = 0; i < n; i++) packet[4 + i] = payload[i];
    crc = hil_crc32(packet, n + 4u);
    for (i = 0; i < 4; i++) packet[n + 4u + i] = (uint8_t)(crc >> (8u * i));
    out[0] = 0; /* leading delimiter: the receiver drops whatever garbage came before */
    len = 1u + hil_cobs_encode(packet, n + 8u, out + 1);
    out[len++] = 0;
    return len;
}
