/* The PX4 API the raptor module uses, one declaration each, with the file it comes from.
 *
 * PX4-Autopilot v1.15. Built in the PX4 tree (RAPTOR_PX4_IN_TREE, set by CMakeLists.txt) the real headers are used
 * and every call below must compile against them, and raptor_px4_check.hpp static-asserts that each field the
 * module uses has the type declared here; built alone (CI), these are the subsets the module uses, with the uORB
 * message structs cut to the fields it reads or writes (field names and types as in the msg/ definitions).
 */
#pragma once

#include <stdint.h>

#ifdef RAPTOR_PX4_IN_TREE
#include <drivers/drv_hrt.h>
#include <lib/parameters/param.h>
#include <px4_platform_common/log.h>
#include <px4_platform_common/module.h>
#include <px4_platform_common/px4_work_queue/ScheduledWorkItem.hpp>
#include <uORB/Publication.hpp>
#include <uORB/Subscription.hpp>
#include <uORB/SubscriptionCallback.hpp>
#include <uORB/topics/actuator_motors.h>
#include <uORB/topics/trajectory_setpoint.h>
#include <uORB/topics/vehicle_angular_velocity.h>
#include <uORB/topics/vehicle_attitude.h>
#include <uORB/topics/vehicle_command.h>
#include <uORB/topics/vehicle_control_mode.h>
#include <uORB/topics/vehicle_local_position.h>
#include <uORB/topics/offboard_control_mode.h>
#include <uORB/topics/vehicle_status.h>
#else
/* drivers/drv_hrt.h */
typedef uint64_t hrt_abstime;
hrt_abstime hrt_absolute_time(void);
/* lib/parameters/param.h */
typedef uint16_t param_t;
#define PARAM_INVALID ((param_t)0xffff)
param_t param_find(const char *name);
/* C++: type-checked overloads (param.h defines param_get as param_get_cplusplus) */
int param_get(param_t param, int32_t *val);
int param_get(param_t param, float *val);
/* px4_platform_common/log.h (printf-style logging macros): here they check their format and arguments */
__attribute__((format(printf, 1, 2))) static inline void raptor_px4_log(const char *fmt, ...) { (void)fmt; }
#define PX4_INFO(...) raptor_px4_log(__VA_ARGS__)
#define PX4_INFO_RAW(...) raptor_px4_log(__VA_ARGS__)
#define PX4_WARN(...) raptor_px4_log(__VA_ARGS__)
#define PX4_ERR(...) raptor_px4_log(__VA_ARGS__)
/* uORB/uORB.h */
struct orb_metadata;
#define ORB_ID(name) (&__orb_##name)
/* msg/VehicleAngularVelocity.msg */
struct vehicle_angular_velocity_s {
    uint64_t timestamp;
    uint64_t timestamp_sample;
    float xyz[3]; /* rad/s, FRD */
};
/* msg/VehicleAttitude.msg */
struct vehicle_attitude_s {
    uint64_t timestamp;
    uint64_t timestamp_sample;
    float q[4]; /* w, x, y, z: FRD body -> NED */
};
/* msg/VehicleLocalPosition.msg (subset) */
struct vehicle_local_position_s {
    uint64_t timestamp;
    bool xy_valid;
    bool z_valid;
    bool v_xy_valid;
    bool v_z_valid;
    float x, y, z;    /* m, NED */
    float vx, vy, vz; /* m/s, NED */
};
/* msg/TrajectorySetpoint.msg (subset) */
struct trajectory_setpoint_s {
    uint64_t timestamp;
    float position[3]; /* m, NED; NaN = not set */
    float velocity[3]; /* m/s, NED; NaN = not set */
    float acceleration[3]; /* m/s^2, NED; NaN = not set */
    float yaw;         /* rad, NED (from north toward east); NaN = not set */
};
/* msg/VehicleControlMode.msg (subset) */
struct vehicle_control_mode_s {
    uint64_t timestamp;
    bool flag_armed;
    bool flag_control_offboard_enabled;
    bool flag_control_allocation_enabled;
};
/* msg/VehicleStatus.msg (subset) */
struct vehicle_status_s {
    uint64_t timestamp;
    uint8_t nav_state;
    static constexpr uint8_t NAVIGATION_STATE_AUTO_LOITER = 4;
    static constexpr uint8_t NAVIGATION_STATE_OFFBOARD = 14;
};
/* msg/OffboardControlMode.msg */
struct offboard_control_mode_s {
    uint64_t timestamp;
    bool position;
    bool velocity;
    bool acceleration;
    bool attitude;
    bool body_rate;
    bool thrust_and_torque;
    bool direct_actuator;
};
/* msg/ActuatorMotors.msg */
struct actuator_motors_s {
    uint64_t timestamp;
    uint64_t timestamp_sample;
    uint16_t reversible_flags;
    float control[12]; /* [0, 1]; NaN = disarmed */
};
/* msg/VehicleCommand.msg (subset) */
struct vehicle_command_s {
    uint64_t timestamp;
    float param1, param2, param3;
    uint32_t command;
    uint8_t target_system;
    uint8_t target_component;
    uint8_t source_system;
    uint16_t source_component;
    bool from_external;
    static constexpr uint16_t VEHICLE_CMD_DO_SET_MODE = 176;
};
extern const struct orb_metadata __orb_vehicle_angular_velocity, __orb_vehicle_attitude, __orb_vehicle_local_position,
    __orb_trajectory_setpoint, __orb_vehicle_control_mode, __orb_actuator_motors, __orb_vehicle_command,
    __orb_vehicle_status, __orb_offboard_control_mode, __orb_vehicle_local_position_groundtruth;
namespace px4
{
/* platforms/common/include/px4_platform_common/atomic.h */
template <typename T>
class atomic
{
public:
    T load() const;
    void store(T value);
};
/* platforms/common/include/px4_platform_common/px4_work_queue/WorkQueueManager.hpp */
struct wq_config_t {
    const char *name;
    uint16_t stacksize;
    int8_t relative_priority;
};
namespace wq_configurations
{
extern const wq_config_t rate_ctrl;
}
/* .../px4_work_queue/WorkItem.hpp, ScheduledWorkItem.hpp */
class WorkItem
{
public:
    void ScheduleNow();
    virtual ~WorkItem();

protected:
    virtual void Run() = 0;
};
class ScheduledWorkItem : public WorkItem
{
public:
    ScheduledWorkItem(const char *name, const wq_config_t &config);
    ~ScheduledWorkItem() override;
    void ScheduleClear();
};
} // namespace px4
namespace uORB
{
/* uORB/Subscription.hpp */
class Subscription
{
public:
    explicit Subscription(const orb_metadata *meta, uint8_t instance = 0);
    bool updated();
    bool update(void *dst);
    bool copy(void *dst);
};
/* uORB/SubscriptionCallback.hpp */
class SubscriptionCallbackWorkItem
{
public:
    SubscriptionCallbackWorkItem(px4::WorkItem *work_item, const orb_metadata *meta, uint8_t instance = 0);
    bool registerCallback();
    void unregisterCallback();
    bool updated();
    bool update(void *dst);
    bool copy(void *dst);
};
/* uORB/Publication.hpp */
template <typename T>
class Publication
{
public:
    explicit Publication(const orb_metadata *meta);
    bool publish(const T &data);
};
} // namespace uORB
/* platforms/common/include/px4_platform_common/module.h (v1.15: the CRTP module base; T provides task_spawn,
 * custom_command and print_usage; the running instance is the protected atomic _object, set in task_spawn) */
template <class T>
class ModuleBase
{
public:
    virtual ~ModuleBase() {}
    static int main(int argc, char *argv[]);
    static bool is_running();
    virtual int print_status();
    virtual void request_stop();

protected:
    bool should_exit() const;
    static void exit_and_cleanup();
    static T *get_instance();
    static px4::atomic<T *> _object;
    static int _task_id;
    static constexpr const int task_id_is_work_queue = -2;
};
#define __EXPORT __attribute__((visibility("default")))
#define PX4_OK 0
#define PX4_ERROR (-1)
#endif
