/* HIL port for the STM32F405 (Crazyflie 2.x, Betaflight F4; QEMU netduinoplus2): USART1 polled, SysTick clock.
 * QEMU drops received bytes unless CR1 has UE | RE | TE; baud and clock setup are ignored by QEMU and are the
 * board's job on silicon. */
#include "hil_port.h"

#define USART1_SR (*(volatile uint32_t *)0x40011000u)
#define USART1_DR (*(volatile uint32_t *)0x40011004u)
#define USART1_CR1 (*(volatile uint32_t *)0x4001100Cu)
#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)

void hil_port_init(void) {
    USART1_CR1 = (1u << 13) | (1u << 3) | (1u << 2); /* UE | TE | RE */
    SYST_RVR = 0x00FFFFFFu;
    SYST_CVR = 0u;
    SYST_CSR = 5u;
}

int hil_port_read_byte(void) {
    while (!(USART1_SR & (1u << 5))) {
    }
    return (int)(USART1_DR & 0xFFu);
}

void hil_port_write(const uint8_t *data, size_t n) {
    size_t i;
    for (i = 0; i < n; i++) {
        while (!(USART1_SR & (1u << 7))) {
        }
        USART1_DR = data[i];
    }
}

uint32_t hil_port_micros(void) { /* 24-bit SysTick at 168 MHz: wraps every 0.1 s, fine for one inference */
    static uint32_t last, us_acc, frac;
    uint32_t now = SYST_CVR, elapsed = (last - now) & 0x00FFFFFFu;
    last = now;
    frac += elapsed;
    us_acc += frac / 168u;
    frac %= 168u;
    return us_acc;
}
