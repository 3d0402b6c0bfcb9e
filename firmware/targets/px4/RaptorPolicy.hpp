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

private:
    void Run() override;
    void hand_back(uint32_t reason);

    uORB::SubscriptionCallbackWorkItem _angular_velocity_sub{this, ORB_ID(vehicle_angular_velocity)};
    uORB::Subscription _attitude_sub{ORB_ID(vehicle_attitude)};
    uORB::Subscription _local_position_sub{ORB_ID(vehicle_local_position)};
    uORB::Subscription _setpoint_sub{ORB_ID(trajectory_setpoint)};
    uORB::Subscription _control_mode_sub{ORB_ID(vehicle_control_mode)};
    uORB::Publication<actuator_motors_s> _motors_pub{ORB_ID(actuator_motors)};
    uORB::Publication<vehicle_command_s> _command_pub{ORB_ID(vehicle_command)};

    vehicle_angular_velocity_s _angular_velocity{};
    vehicle_attitude_s _attitude{};
    vehicle_local_position_s _local_position{};
    trajectory_setpoint_s _setpoint{};
    vehicle_control_mode_s _control_mode{};

    raptor_policy_t _policy{};
    float _previous_action[4]{};
    bool _active{false};
    bool _handed_back{false};
    uint32_t _exit_reason{0};
    uint32_t _status{0};
    param_t _enable_param{PARAM_INVALID};
};
