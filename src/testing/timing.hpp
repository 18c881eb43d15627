// How etap run and etap bench time a call (docs/PERF.md, "Performance method"): CUDA events around the call
// alone, L2 flushed before every timed run, warm-up first, all samples returned (the caller takes the
// median).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <functional>
#include <vector>

#include "testing/cuda.hpp"

namespace etap::testing {

// Evicts the L2 by writing a buffer of twice its size (cudaDevAttrL2CacheSize).
class L2Flusher {
 public:
  explicit L2Flusher(int device);
  void flush(cudaStream_t stream);
  int64_t bytes() const { return static_cast<int64_t>(buffer_.bytes()); }
  int64_t l2_bytes() const { return l2_bytes_; }

 private:
  int64_t l2_bytes_ = 0;
  DeviceBuffer buffer_;
  int value_ = 0;
};

// One call of the timed operation; `i` counts calls (implementations rotate input sets by it). Throws on
// error.
using Call = std::function<void(int i, cudaStream_t stream)>;

struct TimingSpec {
  int warmup = 5;
  int iters = 30;
};

// Per-call microseconds of `iters` runs, each preceded by an L2 flush that is outside the events.
std::vector<double> time_calls(const Call& call, L2Flusher* flusher, const TimingSpec& spec,
                               cudaStream_t stream);

// CUDA-graph mode: `calls_per_graph` calls are captured into one graph; every timed replay is preceded by an
// L2 flush; returns the replay time divided by calls_per_graph, one sample per replay.
std::vector<double> time_graph(const Call& call, int calls_per_graph, L2Flusher* flusher,
                               const TimingSpec& spec, cudaStream_t stream);

}  // namespace etap::testing
