// The implementations the benchmark times side by side, behind one interface: etap itself, the padded
// baseline (query rows on wgmma's M, padded to 64) and the unfused cuBLAS baseline.
#pragma once

#include <cuda_runtime_api.h>

#include <etap/etap.hpp>
#include <memory>
#include <span>
#include <string>

#include "cublas_handle.hpp"
#include "outcome.hpp"

namespace etap::bench {

struct CallStatus {
  Outcome outcome = Outcome::kOk;
  std::string message;
  bool ok() const { return outcome == Outcome::kOk; }
};

class Implementation {
 public:
  virtual ~Implementation() = default;
  virtual std::string name() const = 0;
  // Allocates what calls on problems of this shape need and runs the plan, all outside any timed region.
  // `seqlens` is the host copy of args.seqlens.
  virtual CallStatus setup(const DecodeArgs& args, std::span<const int32_t> seqlens, cudaStream_t stream) = 0;
  // One decode call; args may differ from setup's only in data pointers of the same shape (rotated input
  // sets). Enqueues work only: no allocation, no synchronisation (CUDA-graph safe).
  virtual CallStatus call(const DecodeArgs& args, cudaStream_t stream) = 0;
  // The planning step on its own, where there is one.
  virtual bool has_plan() const { return false; }
  virtual CallStatus plan(const DecodeArgs&, cudaStream_t) { return {}; }
  // Frees what setup allocated.
  virtual void release() = 0;
};

// Maps an etap::Status to the benchmark's outcome: shapes the library does not implement are "unsupported".
CallStatus from_status(const Status& status);

std::unique_ptr<Implementation> make_etap(const Options& options);
std::unique_ptr<Implementation> make_padded(const Options& options);
std::unique_ptr<Implementation> make_etap_transposed(const Options& options);
std::unique_ptr<Implementation> make_etap_rows(const Options& options);
std::unique_ptr<Implementation> make_cublas(CublasHandle& cublas);

// "etap", "padded", "cublas", "etap-transposed", "etap-rows"; nullptr for an unknown name.
// Experiment (etap bench --fixed-cost): the etap implementations plan with this per-segment cost F instead of
// the library's kFixedCost when it is > 0. Decode and combine follow the F in the plan's header.
void set_plan_fixed_cost(int32_t fixed_cost);

std::unique_ptr<Implementation> make_implementation(const std::string& name, const Options& options,
                                                    CublasHandle& cublas);

}  // namespace etap::bench
