/* RaptorPolicy: the RAPTOR policy as a PX4 module (PX4-Autopilot v1.15).
 *
 * Runs on the rate_ctrl work queue, triggered by every vehicle_angular_velocity update (the gyro rate; set
 * IMU_GYRO_RATEMAX = 400 so that every 4th call is a native 100 Hz step). Active while armed, in Offboard mode with
 * direct actuator control (PX4's control allocation off, so nothing else writes actuator_motors) and RPT_EN = 1.
 * On any stale or invalid input it stops publishing and asks the commander for Hold (hands control back). All
 * frame and motor-order conversions live in raptor_px4_adapter.c.
 */
#include "RaptorPolicy.hpp"

#include <string.h>

#include "raptor_policy_weights.h"

static constexpr float RAPTOR_PX4_SELF_TEST_TOLERANCE = 1e-5f;

RaptorPolicy::RaptorPolicy() : ModuleBase(), ScheduledWorkItem("raptor_policy", px4::wq_configurations::rate_ctrl) {}

RaptorPolicy::~RaptorPolicy() { _angular_velocity_sub.unregisterCallback(); }

bool RaptorPolicy::init()
{
    const float err = raptor_policy_self_test(&RAPTOR_WEIGHTS, &raptor_self_test_input[0][0][0],
                                              &raptor_self_test_output[0][0][0], RAPTOR_SELF_TEST_STEPS,
                                              RAPTOR_SELF_TEST_BATCH);
    if (!(err <= RAPTOR_PX4_SELF_TEST_TOLERANCE)) {
        PX4_ERR("self-test failed (max error %.3g > 1e-5): refusing to start", (double)err);
        return false;
    }
    raptor_policy_init(&_policy, &RAPTOR_WEIGHTS, RAPTOR_PX4_NATIVE_EVERY, 2500000u /* 400 Hz */);
    _enable_param = param_find("RPT_EN");
    if (!_angular_velocity_sub.registerCallback()) {
        PX4_ERR("vehicle_angular_velocity callback registration failed");
        return false;
    }
    return true;
}

void RaptorPolicy::hand_back(uint32_t reason)
{
    _exit_reason = reason;
    if (_active && !_handed_back) { /* Hold (AUTO_LOITER): PX4's own controllers take over */
        vehicle_command_s cmd{};
        cmd.timestamp = hrt_absolute_time();
        cmd.command = vehicle_command_s::VEHICLE_CMD_DO_SET_MODE;
        cmd.param1 = 1.0f; /* custom mode */
        cmd.param2 = 4.0f; /* PX4_CUSTOM_MAIN_MODE_AUTO */
        cmd.param3 = 3.0f; /* PX4_CUSTOM_SUB_MODE_AUTO_LOITER */
        cmd.target_system = 1;
        cmd.target_component = 1;
        cmd.from_external = false;
        _command_pub.publish(cmd);
        _handed_back = true;
        PX4_WARN("handing control back (reason 0x%x)", (unsigned)reason);
    }
    _active = false;
}

void RaptorPolicy::Run()
{
    if (should_exit()) {
        _angular_velocity_sub.unregisterCallback();
        ScheduleClear();
        return;
    }
    if (!_angular_velocity_sub.update(&_angular_velocity)) {
        return; /* run only on a new gyro sample */
    }
    _attitude_sub.update(&_attitude);
    _local_position_sub.update(&_local_position);
    _setpoint_sub.update(&_setpoint);
    _control_mode_sub.update(&_control_mode);

    int32_t enabled = 0;
    if (_enable_param != PARAM_INVALID) {
        param_get(_enable_param, &enabled);
    }
    const bool engaged_mode = _control_mode.flag_armed && _control_mode.flag_control_offboard_enabled &&
                              !_control_mode.flag_control_allocation_enabled && enabled == 1;
    if (!engaged_mode) {
        _active = false;
        _handed_back = false;
        return;
    }
    const hrt_abstime now = hrt_absolute_time();
    const bool position_valid = _local_position.xy_valid && _local_position.z_valid && _local_position.v_xy_valid &&
                                _local_position.v_z_valid;
    uint32_t reason = raptor_px4_check(now, _angular_velocity.timestamp, _attitude.timestamp,
                                       _local_position.timestamp, _setpoint.timestamp, position_valid ? 1u : 0u);
    raptor_observation_t obs;
    const float p[3] = {_local_position.x, _local_position.y, _local_position.z};
    const float v[3] = {_local_position.vx, _local_position.vy, _local_position.vz};
    reason |= raptor_px4_errors(p, v, _setpoint.position, _setpoint.velocity, obs.position, obs.linear_velocity);
    if (reason != RAPTOR_PX4_OK) {
        hand_back(reason);
        return;
    }
    if (_handed_back) {
        return; /* stays off until the mode is left and entered again */
    }
    if (!_active) { /* entering: a fresh flight */
        raptor_policy_reset(&_policy);
        memset(_previous_action, 0, sizeof(_previous_action));
        _active = true;
    }
    raptor_px4_quaternion_to_flu(_attitude.q, obs.orientation);
    raptor_px4_vector_to_flu(_angular_velocity.xyz, obs.angular_velocity);
    memcpy(obs.previous_action, _previous_action, sizeof(_previous_action));

    raptor_action_t act;
    _status = raptor_policy_control(&_policy, now * 1000u, &obs, &act);
    memcpy(_previous_action, act.action, sizeof(_previous_action));

    actuator_motors_s motors{};
    motors.timestamp = hrt_absolute_time();
    motors.timestamp_sample = _angular_velocity.timestamp_sample;
    raptor_px4_actions_to_motors(act.action, motors.control);
    for (int i = 4; i < 12; i++) {
        motors.control[i] = __builtin_nanf("");
    }
    _motors_pub.publish(motors);
}

int RaptorPolicy::task_spawn(int argc, char *argv[])
{
    (void)argc;
    (void)argv;
    RaptorPolicy *instance = new RaptorPolicy();
    if (instance == nullptr) {
        PX4_ERR("allocation failed");
        return PX4_ERROR;
    }
    set_instance(instance);
    _task_id = task_id_is_work_queue;
    if (instance->init()) {
        return PX4_OK;
    }
    delete instance;
    set_instance(nullptr);
    _task_id = -1;
    return PX4_ERROR;
}

int RaptorPolicy::custom_command(int argc, char *argv[])
{
    (void)argc;
    (void)argv;
    return print_usage("unknown command");
}

int RaptorPolicy::print_usage(const char *reason)
{
    if (reason) {
        PX4_WARN("%s", reason);
    }
    PX4_INFO("raptor_policy start|stop|status: the RAPTOR foundation policy (see README.md)");
    return 0;
}

extern "C" __EXPORT int raptor_policy_main(int argc, char *argv[]) { return RaptorPolicy::main(argc, argv); }
