/* RaptorPolicy: the RAPTOR policy as a PX4 module (PX4-Autopilot v1.15), run at the gyro rate. See README.md. */
#pragma once

#include "raptor_px4_api.hpp"

extern "C" {
#include "raptor_policy.h"
#include "raptor_px4_adapter.h"
}

class RaptorPolicy : public ModuleBase<RaptorPolicy>, public px4::ScheduledWorkItem
{
public:
    RaptorPolicy();
    ~RaptorPolicy() override;

    static int task_spawn(int argc, char *argv[]);
    static int custom_command(int argc, char *argv[]);
    static int print_usage(const char *reason = nullptr);

    /* Self-test, then register for angular velocity updates; false (the module refuses to start) on a failure. */
    bool init();
    int print_status() override;
    /* Wakes Run() so that it exits even when no gyro sample arrives (stop returns at once). */
    void request_stop() override;

    /* raptor_policy engage: the module is its own setpoint source (the position where it engages), publishes
     * offboard_control_mode with direct_actuator and asks the commander for Offboard. */
    void engage();
    /* raptor_policy goto N E D: the next setpoint (local NED, m); also the keepalive of RPT_SP_TO. */
    void set_setpoint(const float ned[3]);
    void set_yaw(float yaw_ned_rad); /* NaN: hold the heading of engagement */
    void keepalive();
    /* raptor_policy release: hand control back (Hold) and stop publishing offboard_control_mode. */
    void release();

private:
    void Run() override;
    void hand_back(uint32_t reason);
    void request_mode(uint8_t main_mode, uint8_t sub_mode);
    void publish_offboard_mode(hrt_abstime now);

    uORB::SubscriptionCallbackWorkItem _angular_velocity_sub{this, ORB_ID(vehicle_angular_velocity)};
    uORB::Subscription _attitude_sub{ORB_ID(vehicle_attitude)};
    uORB::Subscription _local_position_sub{ORB_ID(vehicle_local_position)};
    uORB::Subscription _local_position_truth_sub{ORB_ID(vehicle_local_position_groundtruth)};
    uORB::Subscription _setpoint_sub{ORB_ID(trajectory_setpoint)};
    uORB::Subscription _control_mode_sub{ORB_ID(vehicle_control_mode)};
    uORB::Subscription _status_sub{ORB_ID(vehicle_status)};
    uORB::Publication<actuator_motors_s> _motors_pub{ORB_ID(actuator_motors)};
    uORB::Publication<vehicle_command_s> _command_pub{ORB_ID(vehicle_command)};
    uORB::Publication<offboard_control_mode_s> _offboard_mode_pub{ORB_ID(offboard_control_mode)};

    vehicle_angular_velocity_s _angular_velocity{};
    vehicle_attitude_s _attitude{};
    vehicle_local_position_s _local_position{};
    trajectory_setpoint_s _setpoint{};
    vehicle_control_mode_s _control_mode{};
    vehicle_status_s _status{};

    raptor_policy_t _policy{};
    float _previous_action[4]{};
    float _self_test_error{-1.0f};
    bool _active{false};
    bool _handed_back{false};
    uint32_t _exit_reason{0};
    uint32_t _core_status{0};
    param_t _enable_param{PARAM_INVALID};
    param_t _timeout_param{PARAM_INVALID};
    param_t _position_source_param{PARAM_INVALID};
    int32_t _position_source{0};

    /* engaged by command (shell / MAVLink shell): written by the command thread, read by Run() */
    volatile bool _engage_requested{false};
    volatile bool _own_setpoint_valid{false};
    float _own_setpoint[3]{};
    volatile float _own_yaw{__builtin_nanf("")}; /* rad, NED; NaN: no yaw setpoint */
    volatile hrt_abstime _own_setpoint_time{0};
    hrt_abstime _last_mode_request{0};

    /* counters for status */
    uint32_t _calls{0};
    uint32_t _engaged_calls{0};
    uint32_t _hand_backs{0};
    hrt_abstime _first_call{0};
    hrt_abstime _last_call{0};
};
