/**
 * RAPTOR policy enable
 *
 * 1: the policy flies while armed in Offboard mode with direct actuator control.
 *
 * @boolean
 * @group RAPTOR
 */
PARAM_DEFINE_INT32(RPT_EN, 0);
