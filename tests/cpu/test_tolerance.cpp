// testing::compare's per-element bound against a CPU emulation of the kernel's low-precision arithmetic: a
// correct kernel passes at any input magnitude and with 1–2 visible keys, a real error fails.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <etap/reference.hpp>
#include <limits>
#include <ostream>
#include <string>
#include <vector>

#include "testing/problem.hpp"

namespace etap {
namespace {

// What the kernel does in low precision (docs/DESIGN.md, the data flow of a decode call): logits, then an
// online softmax over pages of keys with a running max; p = exp(s − max) in fp32, rounded to the input dtype
// before P·V; the normaliser summed from the unrounded fp32 p; O accumulated in fp32 and rounded to the
// output dtype.
std::vector<uint16_t> emulate_kernel(const testing::HostData& d) {
  const DecodeProblem& p = d.problem;
  const DType dtype = p.out_dtype;
  auto val = [&](uint16_t bits) { return static_cast<double>(reference::half_bits_to_float(bits, dtype)); };
  auto round = [&](float x) {
    return reference::half_bits_to_float(reference::float_to_half_bits(x, dtype), dtype);
  };
  std::vector<uint16_t> out(static_cast<std::size_t>(p.batch) * p.s_q * p.h_q * p.d_v);
  for (int b = 0; b < p.batch; ++b) {
    const int n = d.seqlens[b];
    for (int i = 0; i < p.s_q; ++i) {
      const int visible = d.causal ? std::clamp(n - p.s_q + i + 1, 0, n) : n;
      for (int h = 0; h < p.h_q; ++h) {
        const int g = h / (p.h_q / p.h_kv);
        const uint16_t* q = d.q.data() + ((static_cast<int64_t>(b) * p.s_q + i) * p.h_q + h) * p.d_qk;
        auto key = [&](int t) {
          const int page = d.block_table[b * p.max_pages_per_seq + t / p.page_size];
          return d.kv_cache.data() +
                 ((static_cast<int64_t>(page) * p.page_size + t % p.page_size) * p.h_kv + g) * p.d_qk;
        };
        std::vector<float> o(p.d_v, 0.f);
        float running_max = -std::numeric_limits<float>::infinity(), sum = 0.f;
        for (int t0 = 0; t0 < visible; t0 += p.page_size) {
          const int t1 = std::min(visible, t0 + p.page_size);
          std::vector<float> s(t1 - t0);
          for (int t = t0; t < t1; ++t) {
            double dot = 0;
            for (int c = 0; c < p.d_qk; ++c) dot += val(q[c]) * val(key(t)[c]);
            s[t - t0] = static_cast<float>(d.softmax_scale * dot);
          }
          const float new_max = std::max(running_max, *std::max_element(s.begin(), s.end()));
          const float alpha = std::exp(running_max - new_max);
          sum *= alpha;
          for (float& x : o) x *= alpha;
          running_max = new_max;
          for (int t = t0; t < t1; ++t) {
            const float weight = std::exp(s[t - t0] - new_max);
            sum += weight;
            const float rounded = round(weight);
            for (int c = 0; c < p.d_v; ++c) o[c] += rounded * static_cast<float>(val(key(t)[c]));
          }
        }
        uint16_t* dst = out.data() + ((static_cast<int64_t>(b) * p.s_q + i) * p.h_q + h) * p.d_v;
        for (int c = 0; c < p.d_v; ++c)
          dst[c] = reference::float_to_half_bits(visible ? o[c] / sum : 0.f, dtype);
      }
    }
  }
  return out;
}

struct Emulated {
  testing::HostData data;
  std::vector<uint16_t> out;
  std::vector<float> lse;
  std::vector<double> ref_out, ref_lse, weighted_abs;
  testing::Comparison compare() const {
    return testing::compare(out, data.problem.out_dtype, lse, ref_out, ref_lse, weighted_abs);
  }
};

Emulated emulate(const testing::ProblemSpec& spec) {
  Emulated e{testing::make_problem(spec), {}, {}, {}, {}, {}};
  reference::decode(e.data.view(), e.ref_out, e.ref_lse, LseBase::kNatural, 0, &e.weighted_abs);
  e.out = emulate_kernel(e.data);
  e.lse.assign(e.ref_lse.begin(), e.ref_lse.end());
  return e;
}

// Requests of 1, 2, 65 and 300 keys (one key: out = v exactly; two keys: the rounding of one weight is the
// whole error and does not shrink where out cancels).
testing::ProblemSpec spec_for(DType dtype, float input_std, bool causal_mtp) {
  testing::ProblemSpec spec;
  spec.batch = 4;
  spec.seqlens = {1, 2, 65, 300};
  spec.h_q = causal_mtp ? 8 : 16;
  spec.s_q = causal_mtp ? 4 : 1;
  spec.causal = causal_mtp;
  spec.dtype = dtype;
  spec.input_std = input_std;
  spec.seed = 21;
  return spec;
}

struct EmulationCase {
  DType dtype;
  float input_std;
  bool causal_mtp;
  friend void PrintTo(const EmulationCase& c, std::ostream* os) {
    *os << to_string(c.dtype) << " std " << c.input_std << (c.causal_mtp ? " s_q 4 causal" : " s_q 1");
  }
};

class EmulatedKernel : public ::testing::TestWithParam<EmulationCase> {};

TEST_P(EmulatedKernel, PassesCompare) {
  const auto& [dtype, input_std, causal_mtp] = GetParam();
  const Emulated e = emulate(spec_for(dtype, input_std, causal_mtp));
  const testing::Comparison c = e.compare();
  EXPECT_TRUE(c.pass) << c.describe();
  EXPECT_GT(c.worst_ratio, 0.0) << c.describe();
  RecordProperty("worst_ratio", std::to_string(c.worst_ratio));
}

TEST_P(EmulatedKernel, OneElementOffByFourBoundsFails) {
  const auto& [dtype, input_std, causal_mtp] = GetParam();
  const Emulated base = emulate(spec_for(dtype, input_std, causal_mtp));
  const DecodeProblem& p = base.data.problem;
  // The first element of a 1-key row, of a 2-key row and of the 300-key row (last query token of each
  // request, which sees every key).
  for (int b : {0, 1, 3}) {
    Emulated e = base;
    const std::size_t i = ((static_cast<std::size_t>(b) * p.s_q + p.s_q - 1) * p.h_q) * p.d_v;
    const double ref = e.ref_out[i];
    const double bound = testing::element_bound(dtype, ref, e.weighted_abs[i]) - 1e-6;  // u·(A + |ref|)
    e.out[i] = reference::float_to_half_bits(static_cast<float>(ref + 4 * bound), dtype);
    const testing::Comparison c = e.compare();
    EXPECT_FALSE(c.pass) << "request " << b << ": " << c.describe();
    EXPECT_GT(c.worst_ratio, 2.0) << "request " << b << ": " << c.describe();
  }
}

TEST_P(EmulatedKernel, NaNFails) {
  const auto& [dtype, input_std, causal_mtp] = GetParam();
  Emulated e = emulate(spec_for(dtype, input_std, causal_mtp));
  e.out[e.out.size() / 2] = dtype == DType::kBF16 ? 0x7FC0 : 0x7E00;
  const testing::Comparison c = e.compare();
  EXPECT_FALSE(c.pass) << c.describe();
  EXPECT_EQ(c.nonfinite, 1);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, EmulatedKernel,
    ::testing::Values(EmulationCase{DType::kBF16, 0.25f, false}, EmulationCase{DType::kBF16, 1.5f, false},
                      EmulationCase{DType::kBF16, 0.25f, true}, EmulationCase{DType::kBF16, 1.5f, true},
                      EmulationCase{DType::kFP16, 0.25f, false}, EmulationCase{DType::kFP16, 1.5f, true}),
    [](const auto& info) {
      const EmulationCase& c = info.param;
      return std::string(c.dtype == DType::kBF16 ? "bf16" : "fp16") +
             (c.input_std > 1 ? "_std1_5" : "_std0_25") + (c.causal_mtp ? "_mtp4_causal" : "_sq1");
    });

}  // namespace
}  // namespace etap
