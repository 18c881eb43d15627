// The conformance sweep of the GPU kernel against the CPU reference (`etap check`, tests/gpu): every config
// runs plan + decode on poisoned inputs (docs/PERF.md, "Correctness method"), is compared with the fp64
// reference, and runs a second time on the same inputs to check that out and lse are bit-identical.
// The comparison (testing::compare) allows each element |out − ref| ≤ u·(Σ p_i·|v_i| + |ref|) + 1e-6,
// u = 2^-7 for bf16 and 2^-10 for fp16 (twice the unit roundoff): the kernel rounds the softmax weights to
// 16 bits before P·V, an error that scales with |v| rather than |out| (large inputs, 1–2 visible keys).
#pragma once

#include <cstdint>
#include <etap/etap.hpp>
#include <memory>
#include <string>
#include <vector>

#include "testing/problem.hpp"

namespace etap::testing {

struct ConformanceConfig {
  int32_t batch = 1;
  int32_t seqlen = 1;      // every request's length; with varlen, the mean
  bool varlen = false;     // lengths uniform in [1, 2·seqlen], with some requests of length 0 when batch > 1
  bool all_empty = false;  // every request has length 0
  int32_t h_q = 16;
  int32_t s_q = 1;
  int32_t h_kv = 1;
  int32_t page_size = 64;
  int32_t d_qk = 576, d_v = 512;
  DType dtype = DType::kBF16;
  KvFormat kv_format = KvFormat::kDense;  // FP8 formats: an e4m3 cache, q/out in dtype
  bool causal = false;
  LseBase lse_base = LseBase::kNatural;
  float input_std = 0.25f;  // 1.5 puts logits in the hundreds (softmax overflow paths)
  int num_sms = 0;          // Options::num_sms; small values force long unsplit parts
  uint64_t seed = 1;
  // Variable query lengths (DecodeProblem::varlen_q): each request's are uniform in [0, s_q] (s_q is then
  // max_seqlen_q), packed q/out/lse with NaN-poisoned packed tokens past the last request's.
  bool varlen_q = false;

  int32_t rows() const { return s_q * h_q / h_kv; }  // R, per KV head
  // Compact and unique, e.g. "b7 sk1000 varlen h16 sq2 causal bf16"; `etap check --filter` matches it.
  std::string name() const;
};

// The problem a config runs (its KV cache is shared by the configs that differ only in the query side).
ProblemSpec problem_spec(const ConformanceConfig& config);

// The full sweep (issue 3) or the quick subset that CTest runs. See conformance.cpp for what is covered.
std::vector<ConformanceConfig> conformance_sweep(bool quick);

// One line per rule of the sweep, for `etap check --list` and the docs.
std::vector<std::string> describe_sweep(bool quick);

struct ConformanceResult {
  std::string name;
  bool pass = false;
  std::string failure;         // why it failed; empty when it passed
  Comparison comparison;       // first run against the reference
  bool bit_identical = false;  // second run reproduced out and lse exactly
  int64_t lse_unwritten = 0;   // lse entries still holding the poison after the call
  double gpu_seconds = 0;      // wall time of the GPU part (upload, two runs, copies)
  double reference_seconds = 0;
};

// Runs configs one after another. Consecutive configs that differ only in the query (heads, s_q, causal,
// lse base, SMs) reuse the generated KV cache: generating it costs as much as the reference.
// After a CUDA error that poisons the context (illegal address, a hang), every later config fails with
// that reason instead of running.
class ConformanceRunner {
 public:
  explicit ConformanceRunner(int reference_threads = 0);
  ~ConformanceRunner();
  ConformanceResult run(const ConformanceConfig& config);
  // A golden case (tests/data/golden) through plan + decode, compared with its fp64 out/lse.
  ConformanceResult run_golden(const std::string& golden_dir, const std::string& case_name, LseBase base);

 private:
  struct Cache;
  std::unique_ptr<Cache> cache_;
  int reference_threads_;
  std::string fatal_;
};

ConformanceResult run_config(const ConformanceConfig& config, int reference_threads = 0);

}  // namespace etap::testing
