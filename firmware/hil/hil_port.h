/* Platform hooks of the HIL device: blocking byte input (-1 at end of input), output, microsecond clock. */
#ifndef RAPTOR_HIL_PORT_H
#define RAPTOR_HIL_PORT_H
#include <stddef.h>
#include <stdint.h>
void hil_port_init(void);
int hil_port_read_byte(void);
void hil_port_write(const uint8_t *data, size_t n);
uint32_t hil_port_micros(void);
#endif
