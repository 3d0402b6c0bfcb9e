/* HIL port for the host build: the device is a process talking over stdin/stdout (a pipe or a pty). */
#define _POSIX_C_SOURCE 200809L
#include <time.h>
#include <unistd.h>

#include "hil_port.h"

static uint8_t inbuf[256];
static ssize_t in_len, in_pos;

void hil_port_init(void) {}

int hil_port_read_byte(void) {
    if (in_pos >= in_len) {
        in_len = read(0, inbuf, sizeof(inbuf));
        in_pos = 0;
        if (in_len <= 0) return -1;
    }
    return inbuf[in_pos++];
}

void hil_port_write(const uint8_t *data, size_t n) {
    while (n > 0) {
        ssize_t w = write(1, data, n);
        if (w <= 0) return;
        data += w;
        n -= (size_t)w;
    }
}

uint32_t hil_port_micros(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint32_t)(ts.tv_sec * 1000000u + ts.tv_nsec / 1000u);
}
