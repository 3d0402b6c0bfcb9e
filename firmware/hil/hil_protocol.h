/* raptor HIL protocol, device side (see hil/PROTOCOL.md). C99, no heap, fixed-size buffers.
 * Frame on the wire: 0x00 COBS(packet) 0x00. Packet: version u8 | type u8 | seq u16 | payload | crc32 u32 (all LE). */
#ifndef RAPTOR_HIL_PROTOCOL_H
#define RAPTOR_HIL_PROTOCOL_H

#include <stddef.h>
#include <stdint.h>

#define HIL_VERSION 2u
#define HIL_MAX_PACKET 96u
#define HIL_MAX_FRAME (HIL_MAX_PACKET + HIL_MAX_PACKET / 254u + 3u)

#define HIL_HELLO 0x01u
#define HIL_RESET 0x02u
#define HIL_OBS 0x03u
#define HIL_HELLO_ACK 0x81u
#define HIL_RESET_ACK 0x82u
#define HIL_ACTION 0x83u
#define HIL_STATUS 0x84u

#define HIL_HELLO_LEN 4u      /* u32 magic 'RPTR' */
#define HIL_RESET_LEN 8u      /* u16 native_every, u16 reserved, u32 control_interval_us */
#define HIL_OBS_LEN 76u       /* u64 timestamp_ns, f32[17] p q v w previous_action */
#define HIL_HELLO_ACK_LEN 32u /* u16 version, u16 reserved, u32 num_parameters, f32 self_test_error, u32 frames_bad,
                                 char policy_id[16] (the policy file's sha256, first 16 hex digits) */
#define HIL_POLICY_ID_LEN 16u
#define HIL_RESET_ACK_LEN 4u  /* u32 status */
#define HIL_ACTION_LEN 24u    /* f32[4] action, u32 inference_us, u32 status */
#define HIL_STATUS_LEN 8u     /* u16 code, u16 detail, u32 frames_bad */

#define HIL_STATUS_BOOT 1u
#define HIL_STATUS_BAD_FRAME 2u
#define HIL_STATUS_UNKNOWN_TYPE 3u
#define HIL_STATUS_BAD_LENGTH 4u
#define HIL_STATUS_NOT_RESET 5u

#define HIL_MAGIC 0x52545052u /* "RPTR" little-endian */

uint32_t hil_crc32(const uint8_t *data, size_t n);
size_t hil_cobs_encode(const uint8_t *in, size_t n, uint8_t *out);
/* Returns the decoded length, or -1 if the frame is not valid COBS or does not fit cap. */
int hil_cobs_decode(const uint8_t *in, size_t n, uint8_t *out, size_t cap);

/* Incremental frame receiver: feed bytes; a complete frame (between delimiters) is decoded and checked. */
typedef struct {
    uint8_t raw[HIL_MAX_FRAME];
    size_t len;
    int overflow;
} hil_receiver_t;

/* Feed one byte. Returns 1 and fills packet/plen when a frame with a valid COBS encoding and CRC completed,
 * -1 when a frame completed but was bad (garbage, truncated, CRC), 0 otherwise. */
int hil_receiver_feed(hil_receiver_t *r, uint8_t byte, uint8_t packet[HIL_MAX_PACKET], size_t *plen);

/* Build a framed packet (delimiter, COBS, delimiter) into out (HIL_MAX_FRAME bytes); returns the frame length. */
size_t hil_frame(uint8_t type, uint16_t seq, const uint8_t *payload, size_t n, uint8_t out[HIL_MAX_FRAME]);

#endif
