/* Built in the PX4 tree only (RAPTOR_PX4_IN_TREE): every uORB field and constant the module uses, with the type
 * raptor_px4_api.hpp declares for builds outside the tree. A PX4 release that changes one fails here, naming it,
 * instead of the stand-alone build and the real one silently disagreeing. */
#pragma once

#include <type_traits>

#define RAPTOR_PX4_FIELD(S, F, T) \
    static_assert(std::is_same<decltype(S::F), T>::value, "PX4 changed " #S "::" #F ": update raptor_px4_api.hpp")

RAPTOR_PX4_FIELD(vehicle_angular_velocity_s, timestamp, uint64_t);
RAPTOR_PX4_FIELD(vehicle_angular_velocity_s, timestamp_sample, uint64_t);
RAPTOR_PX4_FIELD(vehicle_angular_velocity_s, xyz, float[3]);
RAPTOR_PX4_FIELD(vehicle_attitude_s, timestamp, uint64_t);
RAPTOR_PX4_FIELD(vehicle_attitude_s, q, float[4]);
RAPTOR_PX4_FIELD(vehicle_local_position_s, timestamp, uint64_t);
RAPTOR_PX4_FIELD(vehicle_local_position_s, xy_valid, bool);
RAPTOR_PX4_FIELD(vehicle_local_position_s, z_valid, bool);
RAPTOR_PX4_FIELD(vehicle_local_position_s, v_xy_valid, bool);
RAPTOR_PX4_FIELD(vehicle_local_position_s, v_z_valid, bool);
RAPTOR_PX4_FIELD(vehicle_local_position_s, x, float);
RAPTOR_PX4_FIELD(vehicle_local_position_s, vz, float);
RAPTOR_PX4_FIELD(trajectory_setpoint_s, timestamp, uint64_t);
RAPTOR_PX4_FIELD(trajectory_setpoint_s, position, float[3]);
RAPTOR_PX4_FIELD(trajectory_setpoint_s, velocity, float[3]);
RAPTOR_PX4_FIELD(trajectory_setpoint_s, acceleration, float[3]);
RAPTOR_PX4_FIELD(trajectory_setpoint_s, yaw, float);
RAPTOR_PX4_FIELD(vehicle_control_mode_s, flag_armed, bool);
RAPTOR_PX4_FIELD(vehicle_control_mode_s, flag_control_offboard_enabled, bool);
RAPTOR_PX4_FIELD(vehicle_control_mode_s, flag_control_allocation_enabled, bool);
RAPTOR_PX4_FIELD(vehicle_status_s, nav_state, uint8_t);
RAPTOR_PX4_FIELD(offboard_control_mode_s, timestamp, uint64_t);
RAPTOR_PX4_FIELD(offboard_control_mode_s, direct_actuator, bool);
RAPTOR_PX4_FIELD(actuator_motors_s, timestamp_sample, uint64_t);
RAPTOR_PX4_FIELD(actuator_motors_s, control, float[12]);
RAPTOR_PX4_FIELD(vehicle_command_s, command, uint32_t);
RAPTOR_PX4_FIELD(vehicle_command_s, param1, float);
RAPTOR_PX4_FIELD(vehicle_command_s, target_system, uint8_t);
RAPTOR_PX4_FIELD(vehicle_command_s, target_component, uint8_t);
RAPTOR_PX4_FIELD(vehicle_command_s, source_component, uint16_t);
RAPTOR_PX4_FIELD(vehicle_command_s, from_external, bool);
static_assert(vehicle_command_s::VEHICLE_CMD_DO_SET_MODE == 176, "VEHICLE_CMD_DO_SET_MODE");
static_assert(vehicle_status_s::NAVIGATION_STATE_OFFBOARD == 14, "NAVIGATION_STATE_OFFBOARD");
static_assert(vehicle_status_s::NAVIGATION_STATE_AUTO_LOITER == 4, "NAVIGATION_STATE_AUTO_LOITER");
static_assert(std::is_same<decltype(hrt_absolute_time()), hrt_abstime>::value && sizeof(hrt_abstime) == 8,
              "hrt_abstime is 64-bit microseconds");

#undef RAPTOR_PX4_FIELD
