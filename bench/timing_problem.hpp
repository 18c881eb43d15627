// The problems the benchmark times: generated on the GPU (a 64K-token batch is gigabytes of cache), with the
// same layout as testing::make_problem: random page order, unused block-table entries set to kPaddingPageId.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <etap/etap.hpp>
#include <vector>

#include "cuda_util.hpp"
#include "sweeps.hpp"

namespace etap::bench {

inline constexpr double kSoftmaxScale = 0.1352337788608801;  // DeepSeek-V3: 1/sqrt(192) · mscale²

// Per-request lengths of a configuration: fixed, or drawn by testing::varlen_seqlens with the config's seed.
std::vector<int32_t> config_seqlens(const BenchConfig& config);

DType config_dtype(const BenchConfig& config);         // throws std::invalid_argument for an unknown name
KvFormat config_kv_format(const BenchConfig& config);  // "dense", "fp8", "fp8-v32"; throws likewise

class TimingProblem {
 public:
  // With rotate_bytes > 0, enough copies of the KV cache (at most max_sets) that cycling through them touches
  // rotate_bytes: CUDA-graph mode rotates over them so that no call finds its KV in L2.
  TimingProblem(const BenchConfig& config, int64_t rotate_bytes, int max_sets, uint64_t seed,
                cudaStream_t stream);

  const std::vector<int32_t>& seqlens() const { return seqlens_; }
  // Query tokens of each request (config.s_q each, or the varlen_q draw).
  const std::vector<int32_t>& q_lens() const { return q_lens_; }
  const DecodeProblem& problem() const { return problem_; }
  int kv_sets() const { return kv_sets_; }
  int64_t kv_set_bytes() const { return kv_set_bytes_; }
  // Arguments of the call that reads KV copy `set % kv_sets()`.
  DecodeArgs args(int set = 0) const;

 private:
  DecodeProblem problem_;
  std::vector<int32_t> seqlens_, q_lens_;
  int32_t total_q_ = 0;  // varlen_q: packed tokens
  bool causal_ = false;
  int kv_sets_ = 1;
  int64_t kv_set_bytes_ = 0;
  DeviceBuffer q_, kv_, block_table_, seqlens_d_, out_, lse_, cu_seqlens_q_;
  DeviceBuffer descale_k_;  // kFp8PerTensor: one float
};

}  // namespace etap::bench
