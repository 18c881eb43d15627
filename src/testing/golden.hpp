// Golden decode cases computed independently in fp64 (tests/data/golden, see its README.md).
#pragma once

#include <etap/etap.hpp>
#include <string>
#include <vector>

#include "testing/problem.hpp"

namespace etap::testing {

struct GoldenCase {
  std::string name;
  HostData data;            // q, kv_cache (NaN in unowned slots), block_table, seqlens, scale, causal
  std::vector<double> out;  // [batch, s_q, h_q, d_v]; 0 for rows that see no key
  std::vector<double> lse;  // [batch, h_q, s_q] in `base`; +inf for rows that see no key
  LseBase base = LseBase::kNatural;
};

// Reads `dir`/`name`.json and the raw tensors it names; throws std::runtime_error on a missing or
// malformed file.
GoldenCase load_golden(const std::string& dir, const std::string& name);

// The stored cases: case1_tails … case5_mtp4_h8.
std::vector<std::string> golden_case_names();

}  // namespace etap::testing
