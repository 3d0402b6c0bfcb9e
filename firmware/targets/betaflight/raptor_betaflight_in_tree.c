/* The glue as compiled inside the Betaflight tree: the real Betaflight headers, checked against
 * raptor_betaflight_api.h's declarations. */
#define RAPTOR_BF_IN_TREE 1
#include "raptor_betaflight.c"
