/* Runs the device-side frame receiver over a corpus: a file of records (u32 length LE, bytes). Prints the number
 * of valid and bad frames; built with sanitizers on the host, any memory error aborts. */
#include <stdio.h>
#include <stdlib.h>

#include "hil_protocol.h"

int main(int argc, char **argv) {
    static uint8_t data[1 << 16];
    uint8_t packet[HIL_MAX_PACKET], hdr[4];
    size_t n, i, len;
    unsigned long ok = 0, bad = 0, records = 0;
    hil_receiver_t r = {{0}, 0, 0};
    FILE *f = argc > 1 ? fopen(argv[1], "rb") : NULL;
    if (!f) return 2;
    while (fread(hdr, 1, 4, f) == 4) {
        len = (size_t)hdr[0] | ((size_t)hdr[1] << 8) | ((size_t)hdr[2] << 16) | ((size_t)hdr[3] << 24);
        if (len > sizeof(data) || fread(data, 1, len, f) != len) break;
        for (i = 0; i < len; i++) {
            int res = hil_receiver_feed(&r, data[i], packet, &n);
            ok += res > 0;
            bad += res < 0;
        }
        records++;
    }
    fclose(f);
    printf("records %lu valid %lu bad %lu\n", records, ok, bad);
    return 0;
}
