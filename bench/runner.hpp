// The benchmark run: machine description, ceilings, correctness checks, then every configuration timed for
// every selected implementation.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "record.hpp"
#include "sweeps.hpp"

namespace etap::bench {

// What a run times unless --impl says otherwise.
inline const std::vector<std::string>& default_implementation_names() {
  static const std::vector<std::string> names = {"etap", "padded", "cublas"};
  return names;
}

// Every name --impl accepts: the defaults, "etap-transposed" and "etap-rows", etap's plan and workspace with
// the transposed or the rows-on-M kernel forced for every row tile (the A/B and the crossover of the
// rows-on-M kernel, decode/launch/kernel_choice.hpp).
inline const std::vector<std::string>& implementation_names() {
  static const std::vector<std::string> names = {"etap", "padded", "cublas", "etap-transposed", "etap-rows"};
  return names;
}

struct RunOptions {
  std::vector<BenchConfig> configs;
  std::vector<std::string> impls = default_implementation_names();
  int32_t iters = 30;  // the published tables use ≥ 20 (docs/PERF.md, "Performance method")
  int32_t warmup = 5;
  bool graph = false;
  int32_t graph_calls = 20;
  bool check = true;
  int32_t num_sms = 0;
  int32_t fixed_cost = 0;  // experiment: the planner's per-segment cost F in blocks (0: the library's)
  int32_t device = 0;
  uint64_t seed = 1;
};

// The check problem: small, with a tail page on each request.
inline constexpr int32_t kCheckBatch = 2;
inline const std::vector<int32_t>& check_seqlens() {
  static const std::vector<int32_t> lengths = {300, 137};
  return lengths;
}

// Appends to `report` as it goes, so that a fatal CUDA error (thrown as CudaError) leaves what was measured.
// Progress lines go to `log`.
void run_bench(const RunOptions& options, Report& report, std::ostream& log);

}  // namespace etap::bench
