// The register-operand FP8 consumer's fragment maps (fp8_fragment_maps.hpp, fp8_consumer.cuh) on small,
// structured problems: query row n is one-hot at channel c_n (spread over every box, box 4's both halves
// and box 8), and every e4m3 code of the cache is a function of its (slot, channel) with a sign pattern
// and some subnormal codes, so that a wrong K map (pi) picks another channel's logit, a wrong Pᵀ/V token
// map (tau) another token's value under a peaked softmax (large softmax_scale), and a wrong channel map
// (sigma) another channel of O. The poisoned slots past seqlen stay NaN codes (0x7F). One request of one
// to eleven blocks (on one SM: one CTA wraps the 5/4/3-stage ring twice), N = 16, 32, 48 (Sᵀ split over
// d) and 64 (not split), bf16 and fp16 queries, whole blocks, TMA chunks (page 16) and the one-token gather.
// The first mismatching output (row, channel) is printed with the reference's value to make a map error
// readable.
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <etap/etap.hpp>
#include <etap/reference.hpp>
#include <string>
#include <vector>

#include "gpu/gpu_test_util.hpp"
#include "testing/problem.hpp"

namespace etap {
namespace {

struct FragmentCase {
  std::string name;
  DType dtype;
  int32_t seqlen, h_q, page_size;
  int num_sms = 0;  // 1: one CTA streams every block (the ring wraps); 0: all SMs (split requests)
};

std::ostream& operator<<(std::ostream& os, const FragmentCase& c) {
  return os << c.name;
}

constexpr int kDqk = 576;
constexpr uint8_t kNanCode = 0x7F;

// The code of channel c of cache row r: magnitudes 0.5 .. 1.875 (exponent field 6), every 11th a
// subnormal (exponent field 0), signs by (r + c) % 3.
uint8_t pattern_code(int64_t r, int c) {
  uint8_t code = (c % 11 == 5) ? static_cast<uint8_t>(1 + (r + c) % 7)
                               : static_cast<uint8_t>(0x30 + (r * 5 + c * 3) % 16);
  if ((r + c) % 3 == 0) code |= 0x80;
  return code;
}

// Query row n's one channel: stride 37 covers all nine boxes and both halves of box 4 at h_q ≥ 16.
int one_hot_channel(int n) {
  return (37 * n + 5) % kDqk;
}

class Fp8Fragments : public ::testing::TestWithParam<FragmentCase> {};

TEST_P(Fp8Fragments, StructuredProblemMatchesTheReference) {
  ETAP_REQUIRE_SM90();
  const FragmentCase& c = GetParam();
  testing::ProblemSpec spec;
  spec.batch = 1;
  spec.s_q = 1;
  spec.h_q = c.h_q;
  spec.h_kv = 1;
  spec.page_size = c.page_size;
  spec.seqlens = {c.seqlen};
  spec.dtype = c.dtype;
  spec.kv_format = KvFormat::kFp8PerTensor;
  spec.seed = 5;
  testing::HostData host = testing::make_problem(spec);
  host.softmax_scale = 2.0;  // peaked: P picks tokens, so a token permutation of V shows
  host.descale_k = 1.f;
  for (std::size_t i = 0; i < host.kv_bytes.size(); ++i)
    if (host.kv_bytes[i] != kNanCode)  // keep the poison past seqlen
      host.kv_bytes[i] = pattern_code(static_cast<int64_t>(i / kDqk), static_cast<int>(i % kDqk));
  const uint16_t one = c.dtype == DType::kBF16 ? 0x3F80 : 0x3C00;
  std::fill(host.q.begin(), host.q.end(), uint16_t{0});
  for (int n = 0; n < c.h_q; ++n) host.q[static_cast<std::size_t>(n) * kDqk + one_hot_channel(n)] = one;

  std::vector<double> ref_out, ref_lse, ref_wabs;
  reference::decode(host.view(), ref_out, ref_lse, LseBase::kNatural, 0, &ref_wabs);
  testing::DeviceData d;
  Options options;
  options.num_sms = c.num_sms;
  upload(host, LseBase::kNatural, options, d);
  Status s = plan(d.args, d.d_plan, d.plan_size, nullptr, options);
  ASSERT_TRUE(s.ok()) << s.message();
  s = decode(d.args, d.d_plan, d.plan_size, d.d_workspace, d.workspace_size, nullptr, options);
  ASSERT_TRUE(s.ok()) << s.message();
  ETAP_CUDA_OK(cudaDeviceSynchronize());

  const DecodeProblem& p = host.problem;
  std::vector<uint16_t> out(static_cast<std::size_t>(p.h_q) * p.d_v);
  std::vector<float> lse(static_cast<std::size_t>(p.h_q));
  ETAP_CUDA_OK(cudaMemcpy(out.data(), d.d_out, out.size() * 2, cudaMemcpyDeviceToHost));
  ETAP_CUDA_OK(cudaMemcpy(lse.data(), d.d_lse, lse.size() * 4, cudaMemcpyDeviceToHost));
  const testing::Comparison cmp = testing::compare(out, c.dtype, lse, ref_out, ref_lse, ref_wabs);
  EXPECT_TRUE(cmp.pass) << cmp.describe();
  if (!cmp.pass) {
    for (std::size_t i = 0; i < out.size(); ++i) {
      const double got = reference::half_bits_to_float(out[i], c.dtype);
      if (!(std::fabs(got - ref_out[i]) <= 0.05 * std::fabs(ref_out[i]) + 0.02)) {
        ADD_FAILURE() << "first mismatch: row " << i / p.d_v << " channel " << i % p.d_v << ": got " << got
                      << ", reference " << ref_out[i];
        break;
      }
    }
  }
}

const FragmentCase kFragmentCases[] = {
    {"bf16_one_block_h16", DType::kBF16, 64, 16, 64},
    {"bf16_tail_h16", DType::kBF16, 40, 16, 64},
    {"bf16_wrap_h16_one_sm", DType::kBF16, 700, 16, 64, 1},
    {"bf16_wrap_h32_one_sm", DType::kBF16, 700, 32, 64, 1},
    {"bf16_wrap_h48_one_sm", DType::kBF16, 700, 48, 64, 1},
    {"bf16_wrap_h64_one_sm", DType::kBF16, 700, 64, 64, 1},
    {"bf16_split_h16", DType::kBF16, 700, 16, 64},
    {"bf16_tail_h64_page1", DType::kBF16, 150, 64, 1},
    {"fp16_tail_h16", DType::kFP16, 40, 16, 64},
    {"fp16_wrap_h32_page16_one_sm", DType::kFP16, 700, 32, 16, 1},
    {"fp16_tail_h64", DType::kFP16, 100, 64, 64},
};

INSTANTIATE_TEST_SUITE_P(Maps, Fp8Fragments, ::testing::ValuesIn(kFragmentCases),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace etap
