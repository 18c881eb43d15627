// etap::decode and the padded baseline: both plan with etap::plan into the same plan buffer and workspace.
#include <etap/etap.hpp>

#include "baselines/padded.hpp"
#include "cuda_util.hpp"
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
    return from_status(etap::plan(args, plan_.get(), plan_.bytes(), stream, options_));
  }
  void release() override {
    plan_.reset();
    workspace_.reset();
  }

 protected:
  Options options_;
  DeviceBuffer plan_, workspace_;
};

// The same plan and workspace, then the padded launcher directly with the plan's own parameters.
class PaddedDecode : public EtapDecode {
 public:
  using EtapDecode::EtapDecode;
  std::string name() const override { return "padded"; }

  CallStatus setup(const DecodeArgs& args, std::span<const int32_t> seqlens, cudaStream_t stream) override {
    if (CallStatus s = EtapDecode::setup(args, seqlens, stream); !s.ok()) return s;
    decoding::PlanHeader header{};
    ETAP_BENCH_CUDA(cudaMemcpyAsync(&header, plan_.get(), sizeof header, cudaMemcpyDeviceToHost, stream));
    ETAP_BENCH_CUDA(cudaStreamSynchronize(stream));
    params_ = {header.num_parts, header.fixed_cost};
    return {};
  }
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

 private:
  decoding::PlanParams params_{};
};

}  // namespace

std::unique_ptr<Implementation> make_etap(const Options& options) {
  return std::make_unique<EtapDecode>(options);
}
std::unique_ptr<Implementation> make_padded(const Options& options) {
  return std::make_unique<PaddedDecode>(options);
}

std::unique_ptr<Implementation> make_implementation(const std::string& name, const Options& options,
                                                    CublasHandle& cublas) {
  if (name == "etap") return make_etap(options);
  if (name == "padded") return make_padded(options);
  if (name == "cublas") return make_cublas(cublas);
  return nullptr;
}

}  // namespace etap::bench
