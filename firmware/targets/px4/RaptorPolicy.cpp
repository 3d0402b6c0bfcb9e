/* RaptorPolicy: the RAPTOR policy as a PX4 module (PX4-Autopilot v1.15).
 *
 * Runs on the rate_ctrl work queue, triggered by every vehicle_angular_velocity update (the gyro rate; set
 * IMU_GYRO_RATEMAX = 400, and in SIH IMU_INTEG_RATE = 400, so that every 4th call is a native 100 Hz step). Flies
 * while armed, in Offboard mode with direct actuator control (PX4's control allocation off, so nothing else writes
 * actuator_motors) and RPT_EN = 1. Engaged either by `raptor_policy engage` (also over the MAVLink shell: the module
 * is then its own setpoint source, publishes offboard_control_mode.direct_actuator and asks for Offboard) or by a
 * companion that publishes offboard_control_mode.direct_actuator and trajectory_setpoint (uXRCE-DDS / ROS 2).
 * On any stale or invalid input it stops publishing and asks the commander for Hold (hands control back). All
 * frame and motor-order conversions live in raptor_px4_adapter.c.
 */
#include "RaptorPolicy.hpp"

#include <stdlib.h>
#include <string.h>

#include "raptor_policy_weights.h"
#ifdef RAPTOR_PX4_IN_TREE
#include "raptor_px4_check.hpp"
#endif

static constexpr hrt_abstime RAPTOR_PX4_MODE_REQUEST_INTERVAL_US = 500000;
static constexpr uint8_t PX4_MAIN_MODE_AUTO = 4;     /* px4_custom_mode.h PX4_CUSTOM_MAIN_MODE_AUTO */
static constexpr uint8_t PX4_SUB_MODE_AUTO_LOITER = 3; /* PX4_CUSTOM_SUB_MODE_AUTO_LOITER */
static constexpr uint8_t PX4_MAIN_MODE_OFFBOARD = 6;   /* PX4_CUSTOM_MAIN_MODE_OFFBOARD */

RaptorPolicy::RaptorPolicy() : ModuleBase(), ScheduledWorkItem("raptor_policy", px4::wq_configurations::rate_ctrl) {}

RaptorPolicy::~RaptorPolicy() { _angular_velocity_sub.unregisterCallback(); }

bool RaptorPolicy::init()
{
    _self_test_error = raptor_policy_self_test(&RAPTOR_WEIGHTS, &raptor_self_test_input[0][0][0],
                                               &raptor_self_test_output[0][0][0], RAPTOR_SELF_TEST_STEPS,
                                               RAPTOR_SELF_TEST_BATCH);
    if (!(_self_test_error <= RAPTOR_SELF_TEST_TOLERANCE)) {
        PX4_ERR("self-test failed (max error %.3g > 1e-5): refusing to start", (double)_self_test_error);
        return false;
    }
    raptor_policy_init(&_policy, &RAPTOR_WEIGHTS, RAPTOR_PX4_NATIVE_EVERY, 2500000u /* 400 Hz */);
    raptor_policy_set_heading(&_policy, &RAPTOR_HEADING); /* the policy file's heading governor */
    raptor_policy_set_lead(&_policy, &RAPTOR_LEAD);       /* and its setpoint-acceleration lead */
    _enable_param = param_find("RPT_EN");
    _timeout_param = param_find("RPT_SP_TO");
    _position_source_param = param_find("RPT_POS_SRC");
    if (!_angular_velocity_sub.registerCallback()) {
        PX4_ERR("vehicle_angular_velocity callback registration failed");
        return false;
    }
    PX4_INFO("self-test passed (max error %.3g); policy %s", (double)_self_test_error, RAPTOR_POLICY_NAME);
    return true;
}

void RaptorPolicy::request_stop()
{
    ModuleBase::request_stop();
    ScheduleNow(); /* Run() exits even when the gyro is silent */
}

void RaptorPolicy::request_mode(uint8_t main_mode, uint8_t sub_mode)
{
    vehicle_command_s cmd{};
    cmd.timestamp = hrt_absolute_time();
    cmd.command = vehicle_command_s::VEHICLE_CMD_DO_SET_MODE;
    cmd.param1 = 1.0f; /* MAV_MODE_FLAG_CUSTOM_MODE_ENABLED */
    cmd.param2 = (float)main_mode;
    cmd.param3 = (float)sub_mode;
    cmd.target_system = 1;
    cmd.target_component = 1;
    cmd.from_external = false;
    _command_pub.publish(cmd);
}

void RaptorPolicy::publish_offboard_mode(hrt_abstime now)
{
    offboard_control_mode_s mode{};
    mode.timestamp = now;
    mode.direct_actuator = true;
    _offboard_mode_pub.publish(mode);
}

void RaptorPolicy::hand_back(uint32_t reason)
{
    if (_handed_back) { /* already handed back: keep the first reason (the commander is switching to Hold) */
        _engage_requested = false;
        _active = false;
        return;
    }
    _exit_reason = reason;
    _engage_requested = false; /* stop publishing offboard_control_mode: the commander's choice from here on */
    _own_setpoint_valid = false;
    if (_active) { /* Hold (AUTO_LOITER): PX4's own controllers take over */
        request_mode(PX4_MAIN_MODE_AUTO, PX4_SUB_MODE_AUTO_LOITER);
        _handed_back = true;
        _hand_backs++;
        for (uint32_t bit = 1u; bit != 0u && bit <= reason; bit <<= 1) {
            if (reason & bit) {
                PX4_WARN("handing control back to PX4 (Hold): %s", raptor_px4_reason_name(bit));
            }
        }
    }
    _active = false;
}

void RaptorPolicy::engage()
{
    int32_t enabled = 0;
    if (_enable_param != PARAM_INVALID) {
        param_get(_enable_param, &enabled);
    }
    if (enabled != 1) {
        PX4_ERR("RPT_EN is 0: set it to 1 to let the policy fly (param set RPT_EN 1)");
        return;
    }
    _own_setpoint_valid = false; /* the position where it engages, taken in Run() */
    _own_yaw = __builtin_nanf(""); /* and its heading */
    _last_mode_request = 0;
    _handed_back = false;
    _engage_requested = true;
    PX4_INFO("engaging: holding the current position in Offboard (raptor_policy goto N E D to move)");
}

void RaptorPolicy::set_setpoint(const float ned[3])
{
    for (int i = 0; i < 3; i++) {
        _own_setpoint[i] = ned[i];
    }
    _own_setpoint_time = hrt_absolute_time();
    _own_setpoint_valid = true;
}

void RaptorPolicy::set_yaw(float yaw_ned_rad) { _own_yaw = yaw_ned_rad; }

void RaptorPolicy::keepalive() { _own_setpoint_time = hrt_absolute_time(); }

void RaptorPolicy::release()
{
    const bool was = _engage_requested || _active;
    hand_back(RAPTOR_PX4_RELEASED);
    PX4_INFO(was ? "released: control handed back to PX4 (Hold)" : "not engaged");
}

void RaptorPolicy::Run()
{
    if (should_exit()) {
        _angular_velocity_sub.unregisterCallback();
        exit_and_cleanup(); /* deletes this: nothing after it */
        return;
    }
    if (!_angular_velocity_sub.update(&_angular_velocity)) {
        return; /* run only on a new gyro sample */
    }
    const hrt_abstime now = hrt_absolute_time();
    _calls++;
    if (_first_call == 0) {
        _first_call = now;
    }
    _last_call = now;
    _attitude_sub.update(&_attitude);
    if (_position_source_param != PARAM_INVALID) {
        param_get(_position_source_param, &_position_source);
    }
    if (_position_source == 1) {
        _local_position_truth_sub.update(&_local_position);
    } else {
        _local_position_sub.update(&_local_position);
    }
    _setpoint_sub.update(&_setpoint);
    _control_mode_sub.update(&_control_mode);
    _status_sub.update(&_status);

    int32_t enabled = 0;
    if (_enable_param != PARAM_INVALID) {
        param_get(_enable_param, &enabled);
    }
    const bool own = _engage_requested;
    if (own) {
        if (enabled != 1) {
            hand_back(RAPTOR_PX4_RELEASED);
            return;
        }
        publish_offboard_mode(now);
        if (_status.nav_state != vehicle_status_s::NAVIGATION_STATE_OFFBOARD &&
            now - _last_mode_request > RAPTOR_PX4_MODE_REQUEST_INTERVAL_US) {
            if (_active) { /* the mode was changed away from Offboard (user or failsafe): theirs */
                _engage_requested = false;
                _active = false;
                return;
            }
            request_mode(PX4_MAIN_MODE_OFFBOARD, 0);
            _last_mode_request = now;
        }
    }
    const bool engaged_mode = _control_mode.flag_armed && _control_mode.flag_control_offboard_enabled &&
                              !_control_mode.flag_control_allocation_enabled && enabled == 1;
    if (!engaged_mode) {
        if (_active && _control_mode.flag_armed && _control_mode.flag_control_offboard_enabled) {
            hand_back(RAPTOR_PX4_OFFBOARD_LOST); /* still in Offboard, but nobody asks for direct actuators */
            return;
        }
        _active = false;
        _handed_back = false;
        return;
    }
    const bool position_valid = _local_position.xy_valid && _local_position.z_valid && _local_position.v_xy_valid &&
                                _local_position.v_z_valid;
    const float p[3] = {_local_position.x, _local_position.y, _local_position.z};
    const float v[3] = {_local_position.vx, _local_position.vy, _local_position.vz};
    float sp[3], sv[3] = {__builtin_nanf(""), __builtin_nanf(""), __builtin_nanf("")};
    hrt_abstime setpoint_time = _setpoint.timestamp;
    uint32_t reason = 0u;
    if (own) {
        if (!_own_setpoint_valid) {
            set_setpoint(p);
        }
        memcpy(sp, _own_setpoint, sizeof(sp));
        setpoint_time = now;
        float timeout_s = 0.0f;
        if (_timeout_param != PARAM_INVALID) {
            param_get(_timeout_param, &timeout_s);
        }
        if (timeout_s > 0.0f && now - _own_setpoint_time > (hrt_abstime)(timeout_s * 1e6f)) {
            reason |= RAPTOR_PX4_STALE_SETPOINT;
        }
    } else {
        memcpy(sp, _setpoint.position, sizeof(sp));
        memcpy(sv, _setpoint.velocity, sizeof(sv));
    }
    reason |= raptor_px4_check(now, _angular_velocity.timestamp, _attitude.timestamp, _local_position.timestamp,
                               setpoint_time, position_valid ? 1u : 0u);
    raptor_observation_t obs;
    reason |= raptor_px4_errors(p, v, sp, sv, obs.position, obs.linear_velocity);
    if (reason != RAPTOR_PX4_OK) {
        hand_back(reason);
        return;
    }
    if (_handed_back) {
        return; /* stays off until the mode is left and entered again */
    }
    raptor_px4_quaternion_to_flu(_attitude.q, obs.orientation);
    if (!_active) { /* entering: a fresh flight, holding the heading of the moment */
        raptor_policy_reset(&_policy);
        raptor_policy_hold_heading(&_policy, obs.orientation);
        memset(_previous_action, 0, sizeof(_previous_action));
        _active = true;
        _exit_reason = 0;
        PX4_INFO("engaged");
    }
    _engaged_calls++;
    float cos_yaw, sin_yaw; /* the yaw setpoint: goto's, or the companion's trajectory_setpoint.yaw, where set */
    if (raptor_px4_yaw_to_flu(own ? _own_yaw : _setpoint.yaw, &cos_yaw, &sin_yaw)) {
        raptor_policy_set_yaw_setpoint(&_policy, cos_yaw, sin_yaw);
    }
    { /* the companion's trajectory_setpoint.acceleration (NED; NaN = not set: no lead), none for goto */
        float acc[3] = {0.0f, 0.0f, 0.0f};
        if (!own) {
            raptor_px4_vector_to_flu(_setpoint.acceleration, acc);
        }
        raptor_policy_set_acceleration_setpoint(&_policy, acc[0], acc[1], acc[2]);
    }
    raptor_px4_vector_to_flu(_angular_velocity.xyz, obs.angular_velocity);
    memcpy(obs.previous_action, _previous_action, sizeof(_previous_action));

    raptor_action_t act;
    _core_status = raptor_policy_control(&_policy, now * 1000u, &obs, &act);
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

int RaptorPolicy::print_status()
{
    int32_t enabled = 0;
    if (_enable_param != PARAM_INVALID) {
        param_get(_enable_param, &enabled);
    }
    const float span_s = (float)(_last_call - _first_call) * 1e-6f;
    const float rate_hz = (_calls > 1 && span_s > 0.0f) ? (float)(_calls - 1) / span_s : 0.0f;
    PX4_INFO("policy %s, self-test max error %.3g (tolerance 1e-5)", RAPTOR_POLICY_NAME, (double)_self_test_error);
    PX4_INFO("RPT_EN %d; engaged %s%s; nav_state %u", (int)enabled, _active ? "yes" : "no",
             _engage_requested ? " (by command: own setpoint, own offboard_control_mode)" : "",
             (unsigned)_status.nav_state);
    PX4_INFO("position source: %s", _position_source == 1 ? "vehicle_local_position_groundtruth (SITL)"
                                                           : "vehicle_local_position (estimator)");
    PX4_INFO("calls %u at %.1f Hz (native step every %u), engaged calls %u", (unsigned)_calls, (double)rate_hz,
             (unsigned)RAPTOR_PX4_NATIVE_EVERY, (unsigned)_engaged_calls);
    if (_engage_requested && _own_setpoint_valid) {
        PX4_INFO("setpoint NED %.2f %.2f %.2f m", (double)_own_setpoint[0], (double)_own_setpoint[1],
                 (double)_own_setpoint[2]);
    }
    PX4_INFO("hand-backs %u; last reason 0x%x", (unsigned)_hand_backs, (unsigned)_exit_reason);
    for (uint32_t bit = 1u; bit != 0u && bit <= _exit_reason; bit <<= 1) {
        if (_exit_reason & bit) {
            PX4_INFO("  %s", raptor_px4_reason_name(bit));
        }
    }
    PX4_INFO("core status 0x%x", (unsigned)_core_status);
    return 0;
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
    _object.store(instance);
    _task_id = task_id_is_work_queue;
    if (instance->init()) {
        return PX4_OK;
    }
    delete instance;
    _object.store(nullptr);
    _task_id = -1;
    return PX4_ERROR;
}

int RaptorPolicy::custom_command(int argc, char *argv[])
{
    RaptorPolicy *self = get_instance();
    if (argc < 1) {
        return print_usage("missing command");
    }
    if (self == nullptr || !is_running()) {
        PX4_ERR("not running: raptor_policy start");
        return PX4_ERROR;
    }
    if (strcmp(argv[0], "engage") == 0) {
        self->engage();
        return PX4_OK;
    }
    if (strcmp(argv[0], "release") == 0) {
        self->release();
        return PX4_OK;
    }
    if (strcmp(argv[0], "keepalive") == 0) {
        self->keepalive();
        return PX4_OK;
    }
    if (strcmp(argv[0], "goto") == 0 && (argc == 4 || argc == 5)) {
        float v[4];
        for (int i = 0; i < argc - 1; i++) {
            char *end = nullptr;
            v[i] = strtof(argv[i + 1], &end);
            if (end == argv[i + 1] || *end != '\0') {
                return print_usage("goto takes north east down in m (local frame), and optionally a yaw in degrees");
            }
        }
        if (argc == 5) { /* before the position: Run() never sees the new position with the old yaw */
            self->set_yaw(v[3] * 0.017453292519943295f);
        }
        self->set_setpoint(v);
        return PX4_OK;
    }
    return print_usage("unknown command");
}

int RaptorPolicy::print_usage(const char *reason)
{
    if (reason) {
        PX4_WARN("%s", reason);
    }
    PX4_INFO_RAW("raptor_policy: the RAPTOR foundation policy (README.md)\n"
                 "  start | stop | status\n"
                 "  engage              fly the policy in Offboard, holding the current position (RPT_EN = 1)\n"
                 "  goto N E D [YAW]    new setpoint, local NED in m, and a yaw in degrees (NED: from north toward\n"
                 "                      east; without it the heading of engagement is held); also RPT_SP_TO's keepalive\n"
                 "  keepalive           refresh the RPT_SP_TO timer without moving the setpoint\n"
                 "  release             hand control back to PX4 (Hold)\n");
    return 0;
}

extern "C" __EXPORT int raptor_policy_main(int argc, char *argv[]) { return RaptorPolicy::main(argc, argv); }
