/* raptor_betaflight: the RAPTOR policy inside Betaflight's flight loop (4.6.0). See README.md. */
#ifndef RAPTOR_BETAFLIGHT_H
#define RAPTOR_BETAFLIGHT_H

#include <stdint.h>

/* At boot (end of init()): configure the policy and run its self-test; a failed self-test keeps it off for good. */
void raptorBetaflightInit(void);
/* Every PID loop, between mixTable() and writeMotors(): while armed and AUX1 > 1750 us, overwrite motor[]. */
void raptorBetaflightUpdate(uint64_t currentTimeUs);
/* 1 once the self-test passed; the policy's last status bits (raptor_policy.h); calls that drove the motors. */
uint8_t raptorBetaflightSelfTestPassed(void);
uint32_t raptorBetaflightLastStatus(void);
uint32_t raptorBetaflightActiveCalls(void);

#endif /* RAPTOR_BETAFLIGHT_H */
