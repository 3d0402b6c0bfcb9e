// Loads an RLtools RAPTOR checkpoint (policy.tar) the way PX4's mc_raptor module does, with the real RLtools library:
// the tar's "actor" group into the network type compiled from the px4-blob's policy.h (batch 1, Forward<false,false>),
// `checkpoint_name` from actor/meta, then the stored example (example/input -> example/output) replayed step by step
// from the initial hidden state; refuses the file where the mean |difference| reaches 1e-5, as mc_raptor does.
// With SEQUENCE (raw float32, T x B x 22, row-major) it also writes the actions (T x B x 4) to OUTPUT.
//
//   g++ -std=c++17 -O1 -I RLTOOLS/include -I BLOB_PARENT raptor_rltools_check.cpp -o check
//   ./check policy.tar [SEQUENCE T B OUTPUT]
// Prints one line "checkpoint_name=... example_mean_abs=... example_max_abs=..." and exits 0, or 1 with the reason.
#include <rl_tools/operations/cpu.h>
#include <rl_tools/nn/layers/dense/operations_generic.h>
#include <rl_tools/nn/layers/gru/operations_generic.h>
#include <rl_tools/nn_models/sequential/operations_generic.h>
#include <px4-blob/policy.h>
#include <rl_tools/persist/backends/tar/operations_posix.h>
#include <rl_tools/nn/layers/dense/persist.h>
#include <rl_tools/nn/layers/gru/persist.h>
#include <rl_tools/nn_models/sequential/persist.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <vector>

namespace rlt = rl_tools;
using DEVICE = rlt::devices::DefaultCPU;
using TI = DEVICE::index_t;
using T = float;
using ACTOR = rlt::checkpoint::actor::TYPE::template CHANGE_BATCH_SIZE<TI, 1>::template CHANGE_CAPABILITY<
    rlt::nn::capability::Forward<false, false>>;
using GROUP_SPEC = rlt::persist::backends::tar::ReaderGroupSpecification<TI, rlt::persist::backends::tar::PosixFileData<TI>>;
using GROUP = rlt::persist::backends::tar::ReaderGroup<GROUP_SPEC>;
constexpr TI IN = 22, OUT = 4;
using EX_IN = rlt::checkpoint::example::input::CONTAINER_TYPE;
using EX_OUT = rlt::checkpoint::example::output::CONTAINER_TYPE;
constexpr TI EX_T = rlt::checkpoint::example::input::SHAPE::template GET<0>;
constexpr TI EX_B = rlt::checkpoint::example::input::SHAPE::template GET<1>;

static DEVICE device;
static ACTOR policy;
static ACTOR::State<false> state;
static ACTOR::Buffer<false> buffers;
static rlt::Tensor<rlt::tensor::Specification<T, TI, rlt::tensor::Shape<TI, 1, IN>, false>> input;
static rlt::Tensor<rlt::tensor::Specification<T, TI, rlt::tensor::Shape<TI, 1, OUT>, false>> output;
static rlt::Tensor<rlt::tensor::Specification<T, TI, rlt::checkpoint::example::input::SHAPE, false>> ex_in;
static rlt::Tensor<rlt::tensor::Specification<T, TI, rlt::checkpoint::example::output::SHAPE, false>> ex_out;

// One sequence from the initial hidden state: in (T x stride x 22) column b -> out (T x stride x 4) column b.
static void run(const float* in, float* out, TI steps, TI stride, TI b, DEVICE::SPEC::RANDOM::ENGINE<>& rng) {
    rlt::reset(device, policy, state, rng);
    for (TI t = 0; t < steps; t++) {
        for (TI i = 0; i < IN; i++) rlt::set(device, input, in[(t * stride + b) * IN + i], 0, i);
        rlt::evaluate_step(device, policy, input, state, output, buffers, rng, rlt::Mode<rlt::mode::Evaluation<>>{});
        for (TI i = 0; i < OUT; i++) out[(t * stride + b) * OUT + i] = rlt::get(device, output, 0, i);
    }
}

int main(int argc, char** argv) {
    if (argc != 2 && argc != 6) {
        std::fprintf(stderr, "usage: %s policy.tar [SEQUENCE T B OUTPUT]\n", argv[0]);
        return 2;
    }
    GROUP root;
    root.data.f = std::fopen(argv[1], "rb");
    if (!root.data.f) {
        std::printf("error: cannot open %s\n", argv[1]);
        return 1;
    }
    auto actor_group = rlt::get_group(device, root, "actor");
    if (!rlt::load(device, policy, actor_group)) {
        std::printf("error: the actor group does not load into the RAPTOR network type\n");
        return 1;
    }
    GROUP meta_root;
    meta_root.data = root.data;
    auto actor_meta = rlt::get_group(device, meta_root, "actor");
    if (!rlt::group_exists(device, root, "actor")) {
        std::printf("error: no actor/meta\n");
        return 1;
    }
    char name[64] = "";
    rlt::get_attribute<char*>(device, actor_meta, "checkpoint_name", name, sizeof(name));
    if (name[0] == '\0') {
        std::printf("error: actor/meta has no checkpoint_name\n");
        return 1;
    }
    auto in_group = rlt::get_group(device, root, "example");
    bool ok = rlt::load(device, ex_in, in_group, "input");
    ok = ok && rlt::load(device, ex_out, in_group, "output");
    if (!ok) {
        std::printf("error: example/input or example/output missing or of another shape\n");
        return 1;
    }
    DEVICE::SPEC::RANDOM::ENGINE<> rng;
    rlt::init(device);
    rlt::init(device, rng, 0);
    std::vector<float> in(EX_T * EX_B * IN), want(EX_T * EX_B * OUT), got(EX_T * EX_B * OUT);
    for (TI t = 0; t < EX_T; t++)
        for (TI b = 0; b < EX_B; b++) {
            for (TI i = 0; i < IN; i++) in[(t * EX_B + b) * IN + i] = rlt::get(device, ex_in, t, b, i);
            for (TI i = 0; i < OUT; i++) want[(t * EX_B + b) * OUT + i] = rlt::get(device, ex_out, t, b, i);
        }
    for (TI b = 0; b < EX_B; b++) run(in.data(), got.data(), EX_T, EX_B, b, rng);
    double sum = 0, worst = 0;
    for (size_t k = 0; k < got.size(); k++) {
        double d = std::fabs((double)got[k] - (double)want[k]);
        sum += d;
        worst = d > worst ? d : worst;
    }
    double mean = sum / (double)got.size();
    std::printf("checkpoint_name=%s example_mean_abs=%.3g example_max_abs=%.3g\n", name, mean, worst);
    if (!(mean < 1e-5)) {
        std::printf("error: the example does not replay (mean |difference| %.3g >= 1e-5): mc_raptor refuses this file\n",
                    mean);
        return 1;
    }
    if (argc == 6) {
        TI steps = (TI)std::atol(argv[3]), batch = (TI)std::atol(argv[4]);
        std::vector<float> seq(steps * batch * IN), act(steps * batch * OUT);
        FILE* f = std::fopen(argv[2], "rb");
        if (!f || std::fread(seq.data(), sizeof(float), seq.size(), f) != seq.size()) {
            std::printf("error: cannot read %lu x %lu x 22 float32 from %s\n", (unsigned long)steps,
                        (unsigned long)batch, argv[2]);
            return 1;
        }
        std::fclose(f);
        for (TI b = 0; b < batch; b++) run(seq.data(), act.data(), steps, batch, b, rng);
        FILE* o = std::fopen(argv[5], "wb");
        if (!o || std::fwrite(act.data(), sizeof(float), act.size(), o) != act.size()) {
            std::printf("error: cannot write %s\n", argv[5]);
            return 1;
        }
        std::fclose(o);
    }
    return 0;
}
