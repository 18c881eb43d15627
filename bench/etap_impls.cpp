// etap::decode, the padded baseline and etap with one kernel forced: all plan with the library's planner into
// the same plan buffer and workspace (the forced kernels with their own per-segment cost F; --fixed-cost
// overrides F for every one of them).
#include <etap/etap.hpp>

#include "api/api_internal.hpp"
#include "baselines/padded.hpp"
#include "cuda_util.hpp"
#include "decode/launch/kernel_choice.hpp"
#include "decode/launch/launch.hpp"
#include "decode/plan/plan.hpp"
#include "implementation.hpp"

namespace etap::bench {

CallStatus from_status(const Status& status) {
  switch (status.code()) {
    case StatusCode::kOk:
      return {};
    case StatusCode::kUnsupported:
    case StatusCode::kInvalidArgument:
    case StatusCode::kNoDevice:
      return {Outcome::kUnsupported, status.message()};
    default:
      return {Outcome::kError, std::string(to_string(status.code())) + ": " + status.message()};
  }
}

namespace {

int32_t plan_fixed_cost = 0;

class EtapDecode : public Implementation {
 public:
  explicit EtapDecode(const Options& options) : options_(options) {}
  std::string name() const override { return "etap"; }

  CallStatus setup(const DecodeArgs& args, std::span<const int32_t>, cudaStream_t stream) override {
    if (CallStatus s = from_status(validate(args)); !s.ok()) return s;
    plan_ = DeviceBuffer(plan_bytes(args.problem, options_));
    workspace_ = DeviceBuffer(workspace_bytes(args.problem, options_));
    return plan(args, stream);
  }
  CallStatus call(const DecodeArgs& args, cudaStream_t stream) override {
    return from_status(etap::decode(args, plan_.get(), plan_.bytes(), workspace_.get(), workspace_.bytes(),
                                    stream, options_));
  }
  bool has_plan() const override { return true; }
  CallStatus plan(const DecodeArgs& args, cudaStream_t stream) override {
    const int32_t fixed = fixed_cost(args.problem);
    if (fixed <= 0) return from_status(etap::plan(args, plan_.get(), plan_.bytes(), stream, options_));
    api::BufferSizes sizes{};
    if (CallStatus s = from_status(api::buffer_sizes(args.problem, options_, &sizes)); !s.ok()) return s;
    sizes.params.fixed_cost = fixed;
    return from_status(api::launch_plan_checked(args, sizes, plan_.get(), plan_.bytes(), stream));
  }
  void release() override {
    plan_.reset();
    workspace_.reset();
  }

 protected:
  // The planner's F for this implementation: > 0 overrides the library's choice.
  virtual int32_t fixed_cost(const DecodeProblem&) const { return plan_fixed_cost; }

  Options options_;
  DeviceBuffer plan_, workspace_;
};

// The same plan and workspace, then a launcher of the decode path directly with the plan's own parameters.
class DirectDecode : public EtapDecode {
 public:
  using EtapDecode::EtapDecode;

  CallStatus setup(const DecodeArgs& args, std::span<const int32_t> seqlens, cudaStream_t stream) override {
    if (CallStatus s = EtapDecode::setup(args, seqlens, stream); !s.ok()) return s;
    decoding::PlanHeader header{};
    ETAP_BENCH_CUDA(cudaMemcpyAsync(&header, plan_.get(), sizeof header, cudaMemcpyDeviceToHost, stream));
    ETAP_BENCH_CUDA(cudaStreamSynchronize(stream));
    params_ = {header.num_parts, header.fixed_cost};
    return {};
  }

 protected:
  decoding::PlanParams params_{};
};

// The padded (rows-on-M, padded to 64) baseline.
class PaddedDecode : public DirectDecode {
 public:
  using DirectDecode::DirectDecode;
  std::string name() const override { return "padded"; }

  CallStatus call(const DecodeArgs& args, cudaStream_t stream) override {
    if (args.problem.varlen_q)
      return {Outcome::kNotAvailable, "the padded baseline takes fixed query lengths only"};
    const cudaError_t e =
        launch_decode_padded(args, plan_.get<const int32_t>(), params_, workspace_.get(), stream);
    if (e == cudaErrorNotSupported)
      return {Outcome::kNotAvailable, "the padded baseline covers R <= 64, h_kv 1, page 64, d 576/512 only"};
    if (e != cudaSuccess) return {Outcome::kError, cudaGetErrorString(e)};
    return {};
  }
};

// etap's own decode + combine with one kernel forced for every row tile: the transposed kernel (the A/B of
// the rows-on-M kernel) or the rows-on-M kernel (its crossover below 64 rows).
class ForcedKernelDecode : public DirectDecode {
 public:
  ForcedKernelDecode(const Options& options, decoding::KernelChoice choice)
      : DirectDecode(options), choice_(choice) {}
  std::string name() const override {
    return choice_ == decoding::KernelChoice::kRows ? "etap-rows" : "etap-transposed";
  }

  CallStatus call(const DecodeArgs& args, cudaStream_t stream) override {
    const cudaError_t e =
        decoding::launch_decode(args, plan_.get<const int32_t>(), params_, workspace_.get(), stream, choice_);
    if (e != cudaSuccess) return {Outcome::kError, cudaGetErrorString(e)};
    return {};
  }

 protected:
  // The F of the forced kernel, so that an A/B compares each kernel on its own schedule.
  int32_t fixed_cost(const DecodeProblem& problem) const override {
    return plan_fixed_cost > 0 ? plan_fixed_cost
                               : decoding::fixed_cost_for(decoding::runs_rows_kernel(problem, choice_));
  }

 private:
  decoding::KernelChoice choice_;
};

}  // namespace

void set_plan_fixed_cost(int32_t fixed_cost) {
  plan_fixed_cost = fixed_cost;
}

std::unique_ptr<Implementation> make_etap(const Options& options) {
  return std::make_unique<EtapDecode>(options);
}
std::unique_ptr<Implementation> make_padded(const Options& options) {
  return std::make_unique<PaddedDecode>(options);
}
std::unique_ptr<Implementation> make_etap_transposed(const Options& options) {
  return std::make_unique<ForcedKernelDecode>(options, decoding::KernelChoice::kTransposed);
}
std::unique_ptr<Implementation> make_etap_rows(const Options& options) {
  return std::make_unique<ForcedKernelDecode>(options, decoding::KernelChoice::kRows);
}

std::unique_ptr<Implementation> make_implementation(const std::string& name, const Options& options,
                                                    CublasHandle& cublas) {
  if (name == "etap") return make_etap(options);
  if (name == "padded") return make_padded(options);
  if (name == "etap-transposed") return make_etap_transposed(options);
  if (name == "etap-rows") return make_etap_rows(options);
  if (name == "cublas") return make_cublas(cublas);
  return nullptr;
}

}  // namespace etap::bench
