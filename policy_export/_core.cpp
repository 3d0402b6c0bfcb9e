// raptor.policy_export._core: the firmware's C inference core (firmware/raptor_policy.c) for Python.
// The C file is compiled into this translation unit unchanged, so tests and HIL run the exact firmware code.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstring>
#include <vector>
#include <stdexcept>
#include <string>

#include "raptor_policy.h"
extern "C" {
#include "raptor_policy.c"
}

namespace py = pybind11;
using farr = py::array_t<float, py::array::c_style | py::array::forcecast>;

static void copy_param(const py::dict &params, const char *name, float *dst, size_t n) {
    if (!params.contains(name)) throw std::invalid_argument(std::string("missing weight tensor '") + name + "'");
    farr a = params[name].cast<farr>();
    if (static_cast<size_t>(a.size()) != n)
        throw std::invalid_argument(std::string("weight tensor '") + name + "' has " + std::to_string(a.size()) +
                                    " values, expected " + std::to_string(n));
    std::memcpy(dst, a.data(), n * sizeof(float));
}

class Core {
   public:
    Core(const py::dict &params, uint32_t native_every, uint64_t control_interval_ns) {
        copy_param(params, "input_layer.weight", &w_.input_weight[0][0], 16 * 22);
        copy_param(params, "input_layer.bias", w_.input_bias, 16);
        copy_param(params, "gru.weight_ih", &w_.gru_weight_ih[0][0], 48 * 16);
        copy_param(params, "gru.weight_hh", &w_.gru_weight_hh[0][0], 48 * 16);
        copy_param(params, "gru.bias_ih", w_.gru_bias_ih, 48);
        copy_param(params, "gru.bias_hh", w_.gru_bias_hh, 48);
        copy_param(params, "gru.h0", w_.gru_h0, 16);
        copy_param(params, "output_layer.weight", &w_.output_weight[0][0], 4 * 16);
        copy_param(params, "output_layer.bias", w_.output_bias, 4);
        raptor_policy_init(&p_, &w_, native_every, control_interval_ns);
    }
    void reset() { raptor_policy_reset(&p_); }
    // heading governor constants (cos_step, sin_step, cos_lead, sin_lead) (HeadingGovernor.constants()); None: off
    void set_heading(py::object constants) {
        if (constants.is_none()) {
            raptor_policy_set_heading(&p_, nullptr);
            return;
        }
        auto c = constants.cast<std::vector<float>>();
        if (c.size() != 4) throw std::invalid_argument("set_heading expects (cos_step, sin_step, cos_lead, sin_lead)");
        raptor_heading_t h{1u, c[0], c[1], c[2], c[3]};
        raptor_policy_set_heading(&p_, &h);
    }
    void set_yaw_setpoint(float cos_yaw, float sin_yaw) { raptor_policy_set_yaw_setpoint(&p_, cos_yaw, sin_yaw); }
    // setpoint-acceleration lead (inv_gain_s2, max_lead_m) (SetpointLead); None: off
    void set_lead(py::object constants) {
        if (constants.is_none()) {
            raptor_policy_set_lead(&p_, nullptr);
            return;
        }
        auto c = constants.cast<std::vector<float>>();
        if (c.size() != 2) throw std::invalid_argument("set_lead expects (inv_gain_s2, max_lead_m)");
        raptor_lead_t l{1u, c[0], c[1]};
        raptor_policy_set_lead(&p_, &l);
    }
    void set_acceleration_setpoint(float ax, float ay, float az) {
        raptor_policy_set_acceleration_setpoint(&p_, ax, ay, az);
    }
    void set_safe_action(farr a) {
        if (a.size() != 4) throw std::invalid_argument("safe action needs 4 values");
        std::memcpy(p_.safe_action, a.data(), 4 * sizeof(float));
    }
    // observations (T, 17) [p, q wxyz, v, w, previous action], timestamps (T,) ns -> actions (T, 4), status (T,)
    py::tuple control(py::array_t<uint64_t, py::array::c_style | py::array::forcecast> timestamps_ns, farr obs) {
        if (obs.ndim() != 2 || obs.shape(1) != 17 || timestamps_ns.ndim() != 1 || timestamps_ns.shape(0) != obs.shape(0))
            throw std::invalid_argument("control expects timestamps (T,) and observations (T, 17)");
        const py::ssize_t T = obs.shape(0);
        farr actions({T, static_cast<py::ssize_t>(4)});
        py::array_t<uint32_t> status(T);
        const float *o = obs.data();
        const uint64_t *ts = timestamps_ns.data();
        float *a = actions.mutable_data();
        uint32_t *s = status.mutable_data();
        for (py::ssize_t t = 0; t < T; t++) {
            raptor_observation_t ob;
            std::memcpy(&ob, o + 17 * t, sizeof(ob));
            raptor_action_t out;
            s[t] = raptor_policy_control(&p_, ts[t], &ob, &out);
            std::memcpy(a + 4 * t, out.action, sizeof(out.action));
        }
        return py::make_tuple(actions, status);
    }
    // raw network step: input (22,), hidden (16,) -> (hidden_out (16,), output (4,))
    py::tuple forward(farr input, farr hidden) {
        if (input.size() != 22 || hidden.size() != 16) throw std::invalid_argument("forward expects (22,) and (16,)");
        farr h_out(16), y(4);
        raptor_policy_forward(&w_, input.data(), hidden.data(), h_out.mutable_data(), y.mutable_data());
        return py::make_tuple(h_out, y);
    }
    float self_test(farr inputs, farr outputs) {
        if (inputs.ndim() != 3 || inputs.shape(2) != 22 || outputs.ndim() != 3 || outputs.shape(2) != 4 ||
            inputs.shape(0) != outputs.shape(0) || inputs.shape(1) != outputs.shape(1))
            throw std::invalid_argument("self_test expects inputs (T, B, 22) and outputs (T, B, 4)");
        return raptor_policy_self_test(&w_, inputs.data(), outputs.data(), static_cast<uint32_t>(inputs.shape(0)),
                                       static_cast<uint32_t>(inputs.shape(1)));
    }
    farr hidden() const {
        farr h(16);
        std::memcpy(h.mutable_data(), p_.hidden, sizeof(p_.hidden));
        return h;
    }

   private:
    raptor_weights_t w_;
    raptor_policy_t p_;
};

PYBIND11_MODULE(_core, m) {
    m.doc() = "The firmware's C inference core (firmware/raptor_policy.c), compiled for Python.";
    m.attr("STATUS_NATIVE_STEP") = RAPTOR_STATUS_NATIVE_STEP;
    m.attr("STATUS_INPUT_INVALID") = RAPTOR_STATUS_INPUT_INVALID;
    m.attr("STATUS_TIMESTAMP_INVALID") = RAPTOR_STATUS_TIMESTAMP_INVALID;
    m.attr("STATUS_TIMING_JITTER") = RAPTOR_STATUS_TIMING_JITTER;
    m.attr("STATUS_TIMING_BIAS") = RAPTOR_STATUS_TIMING_BIAS;
    m.attr("STATUS_OUTPUT_INVALID") = RAPTOR_STATUS_OUTPUT_INVALID;
    py::class_<Core>(m, "Core")
        .def(py::init<const py::dict &, uint32_t, uint64_t>(), py::arg("params"), py::arg("native_every") = 1,
             py::arg("control_interval_ns") = 0)
        .def("reset", &Core::reset)
        .def("set_heading", &Core::set_heading, py::arg("constants"))
        .def("set_yaw_setpoint", &Core::set_yaw_setpoint, py::arg("cos_yaw"), py::arg("sin_yaw"))
        .def("set_lead", &Core::set_lead, py::arg("constants"))
        .def("set_acceleration_setpoint", &Core::set_acceleration_setpoint, py::arg("ax"), py::arg("ay"),
             py::arg("az"))
        .def("set_safe_action", &Core::set_safe_action)
        .def("control", &Core::control, py::arg("timestamps_ns"), py::arg("observations"))
        .def("forward", &Core::forward)
        .def("self_test", &Core::self_test)
        .def_property_readonly("hidden", &Core::hidden);
}
