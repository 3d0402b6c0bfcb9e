/* Bare-metal start-up for the QEMU test images (STM32F405 netduinoplus2, Cortex-M7 mps2-an500).
 * Vector table first in flash; the reset handler copies .data, zeroes .bss, enables the FPU (CPACR) before any
 * float instruction, runs main() and, with RAPTOR_SEMIHOSTING, exits through semihosting, so the verdict becomes
 * QEMU's exit code (images for real boards leave it out: semihosting without a debugger halts the MCU). */
#include <stdint.h>
#include <stdlib.h>

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;
extern int main(void);
extern void initialise_monitor_handles(void);
extern void __libc_init_array(void);

void Reset_Handler(void);
void Default_Handler(void);
void _init(void);
void _fini(void);

void _init(void) {} /* no crti/crtn with -nostartfiles: empty hooks for __libc_init_array */
void _fini(void) {}

void Reset_Handler(void) {
    uint32_t *src = &_sidata, *dst = &_sdata;
    while (dst < &_edata) *dst++ = *src++;
    for (dst = &_sbss; dst < &_ebss;) *dst++ = 0;
    *(volatile uint32_t *)0xE000ED88u |= 0xFu << 20; /* CPACR: full access to CP10/CP11 (FPU) */
    __asm volatile("dsb\n\tisb" ::: "memory");
#ifdef RAPTOR_SEMIHOSTING
    initialise_monitor_handles();
#endif
    __libc_init_array();
    exit(main());
}

void Default_Handler(void) {
    exit(99);
}

#define H(f) ((uintptr_t)(f))
__attribute__((section(".isr_vector"), used)) static const uintptr_t vectors[16] = {
    (uintptr_t)&_estack, H(Reset_Handler), H(Default_Handler), H(Default_Handler), H(Default_Handler),
    H(Default_Handler), H(Default_Handler), 0, 0, 0, 0, H(Default_Handler), H(Default_Handler), 0,
    H(Default_Handler), H(Default_Handler),
};
