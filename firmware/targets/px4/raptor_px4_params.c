/**
 * RAPTOR policy enable
 *
 * 1: the policy may fly: while armed in Offboard mode with direct actuator control (engaged with
 * raptor_policy engage, also over the MAVLink shell, or by a companion that publishes
 * offboard_control_mode.direct_actuator, e.g. over uXRCE-DDS).
 * 0: the module never publishes motor commands.
 *
 * @boolean
 * @group RAPTOR
 */
PARAM_DEFINE_INT32(RPT_EN, 0);

/**
 * RAPTOR setpoint timeout
 *
 * With the policy engaged by raptor_policy engage (the module is its own setpoint source), the time without a new
 * raptor_policy goto or keepalive after which it hands control back to PX4 (Hold): a companion that engages it
 * over the MAVLink shell keeps it alive. 0 disables the check (setpoints typed at a ground station's console).
 *
 * @unit s
 * @min 0
 * @max 10
 * @decimal 2
 * @group RAPTOR
 */
PARAM_DEFINE_FLOAT(RPT_SP_TO, 0.0f);

/**
 * RAPTOR position source
 *
 * 0: vehicle_local_position (PX4's estimator, as on every vehicle).
 * 1: vehicle_local_position_groundtruth (SITL only: the simulator's true state, standing in for a motion-capture
 * grade estimate like the one RAPTOR's authors fly with; on hardware the topic does not exist and the module hands
 * back at once with "stale local position").
 *
 * @min 0
 * @max 1
 * @group RAPTOR
 */
PARAM_DEFINE_INT32(RPT_POS_SRC, 0);
