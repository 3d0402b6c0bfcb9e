/* The controller as compiled in the Crazyflie build: the real firmware headers, checked against
 * raptor_crazyflie_api.h's declarations. */
#define RAPTOR_CF_IN_TREE 1
#include "raptor_crazyflie_controller.c"
