// The FP8 KV cache kernels (issue 11) against the fp64 reference over the dequantised cache, for both
// formats: eager calls, the same calls captured in a CUDA graph (replayed: bit-identical to eager), descale_q
// folded into the logits (= a query scaled on the host), and one dense call of the same values for
// comparison.
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <etap/etap.hpp>
#include <etap/reference.hpp>
#include <string>
#include <vector>

#include "gpu/gpu_test_util.hpp"
#include "testing/problem.hpp"

namespace etap {
namespace {

struct Fp8Case {
  std::string name;
  KvFormat format;
  DType dtype;
  int32_t batch, seqlen, h_q, s_q, h_kv, page_size;
};

std::ostream& operator<<(std::ostream& os, const Fp8Case& c) {
  return os << c.name;
}

testing::ProblemSpec spec_of(const Fp8Case& c) {
  testing::ProblemSpec spec;
  spec.batch = c.batch;
  spec.s_q = c.s_q;
  spec.h_q = c.h_q;
  spec.h_kv = c.h_kv;
  spec.page_size = c.page_size;
  spec.seqlens = std::vector<int32_t>(static_cast<std::size_t>(c.batch), c.seqlen);
  spec.seqlens[0] = c.seqlen / 3 + 1;  // a tail block with NaN-poisoned slots in one request
  spec.dtype = c.dtype;
  spec.kv_format = c.format;
  spec.causal = c.s_q > 1;
  spec.seed = 11;
  return spec;
}

struct Outputs {
  std::vector<uint16_t> out;
  std::vector<float> lse;
};

Outputs read_back(const testing::DeviceData& d, const DecodeProblem& p) {
  Outputs o;
  o.out.resize(static_cast<std::size_t>(p.batch) * p.s_q * p.h_q * p.d_v);
  o.lse.resize(static_cast<std::size_t>(p.batch) * p.h_q * p.s_q);
  EXPECT_EQ(cudaMemcpy(o.out.data(), d.d_out, o.out.size() * 2, cudaMemcpyDeviceToHost), cudaSuccess);
  EXPECT_EQ(cudaMemcpy(o.lse.data(), d.d_lse, o.lse.size() * 4, cudaMemcpyDeviceToHost), cudaSuccess);
  return o;
}

class Fp8Decode : public ::testing::TestWithParam<Fp8Case> {};

TEST_P(Fp8Decode, MatchesTheReferenceEagerAndInAGraph) {
  ETAP_REQUIRE_SM90();
  const Fp8Case& c = GetParam();
  const testing::HostData host = testing::make_problem(spec_of(c));
  std::vector<double> ref_out, ref_lse, ref_wabs;
  reference::decode(host.view(), ref_out, ref_lse, LseBase::kNatural, 0, &ref_wabs);

  testing::DeviceData d;
  upload(host, LseBase::kNatural, Options{}, d);
  // A blocking stream: it also waits for upload()'s copies and memsets on the legacy default stream.
  cudaStream_t stream;
  ETAP_CUDA_OK(cudaStreamCreate(&stream));
  const DecodeProblem& p = host.problem;
  const std::size_t out_bytes = static_cast<std::size_t>(p.batch) * p.s_q * p.h_q * p.d_v * 2;

  // Eager.
  ETAP_CUDA_OK(cudaMemsetAsync(d.d_out, 0xFF, out_bytes, stream));
  Status s = plan(d.args, d.d_plan, d.plan_size, stream);
  ASSERT_TRUE(s.ok()) << s.message();
  s = decode(d.args, d.d_plan, d.plan_size, d.d_workspace, d.workspace_size, stream);
  ASSERT_TRUE(s.ok()) << s.message();
  ETAP_CUDA_OK(cudaStreamSynchronize(stream));
  const Outputs eager = read_back(d, p);
  const testing::Comparison cmp = testing::compare(eager.out, c.dtype, eager.lse, ref_out, ref_lse, ref_wabs);
  EXPECT_TRUE(cmp.pass) << cmp.describe();

  // Graph: plan + decode captured once, replayed twice; each replay reproduces the eager bits.
  cudaGraph_t graph;
  cudaGraphExec_t exec;
  ETAP_CUDA_OK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
  s = plan(d.args, d.d_plan, d.plan_size, stream);
  const Status s2 = decode(d.args, d.d_plan, d.plan_size, d.d_workspace, d.workspace_size, stream);
  ETAP_CUDA_OK(cudaStreamEndCapture(stream, &graph));
  ASSERT_TRUE(s.ok() && s2.ok()) << s.message() << s2.message();
  ETAP_CUDA_OK(cudaGraphInstantiate(&exec, graph, 0));
  for (int replay = 0; replay < 2; ++replay) {
    ETAP_CUDA_OK(cudaMemsetAsync(d.d_out, 0xFF, out_bytes, stream));
    ETAP_CUDA_OK(cudaGraphLaunch(exec, stream));
    ETAP_CUDA_OK(cudaStreamSynchronize(stream));
    const Outputs replayed = read_back(d, p);
    EXPECT_EQ(replayed.out, eager.out) << "replay " << replay;
    EXPECT_EQ(0, std::memcmp(replayed.lse.data(), eager.lse.data(), eager.lse.size() * 4));
  }
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  cudaStreamDestroy(stream);
}

// descale_q = 2 on the device equals the reference over 2·q (exact in bf16/fp16: a power of two).
TEST_P(Fp8Decode, DescaleQScalesTheLogits) {
  ETAP_REQUIRE_SM90();
  const Fp8Case& c = GetParam();
  testing::HostData host = testing::make_problem(spec_of(c));
  testing::DeviceData d;
  upload(host, LseBase::kNatural, Options{}, d);
  for (auto& bits : host.q)
    bits = reference::float_to_half_bits(2.f * reference::half_bits_to_float(bits, c.dtype), c.dtype);
  std::vector<double> ref_out, ref_lse, ref_wabs;
  reference::decode(host.view(), ref_out, ref_lse, LseBase::kNatural, 0, &ref_wabs);

  testing::DeviceBuffer two(sizeof(float));
  const float value = 2.f;
  ETAP_CUDA_OK(cudaMemcpy(two.get(), &value, sizeof(float), cudaMemcpyHostToDevice));
  d.args.descale_q = static_cast<const float*>(two.get());
  Status s = plan(d.args, d.d_plan, d.plan_size, nullptr);
  ASSERT_TRUE(s.ok()) << s.message();
  s = decode(d.args, d.d_plan, d.plan_size, d.d_workspace, d.workspace_size, nullptr);
  ASSERT_TRUE(s.ok()) << s.message();
  ETAP_CUDA_OK(cudaDeviceSynchronize());
  const Outputs o = read_back(d, host.problem);
  const testing::Comparison cmp = testing::compare(o.out, c.dtype, o.lse, ref_out, ref_lse, ref_wabs);
  EXPECT_TRUE(cmp.pass) << cmp.describe();
}

// Every loader (pages of 64, 128, 16, 3, 1), both staging places of the per-tensor format (N ≤ 32: the
// separate buffer for ring stage 1; N = 48, 64: in place), split requests (long), row tiles (h_q 128), h_kv
// 2, MTP, fp16.
const Fp8Case kCases[] = {
    {"per_tensor_b4_sk1000_h16", KvFormat::kFp8PerTensor, DType::kBF16, 4, 1000, 16, 1, 1, 64},
    {"per_tensor_b2_sk8192_h16_split", KvFormat::kFp8PerTensor, DType::kBF16, 2, 8192, 16, 1, 1, 64},
    {"per_tensor_b3_sk700_h32_page128", KvFormat::kFp8PerTensor, DType::kBF16, 3, 700, 32, 1, 1, 128},
    {"per_tensor_b3_sk700_h64_page16", KvFormat::kFp8PerTensor, DType::kBF16, 3, 700, 64, 1, 1, 16},
    {"per_tensor_b3_sk700_h16_page16", KvFormat::kFp8PerTensor, DType::kBF16, 3, 700, 16, 1, 1, 16},
    {"per_tensor_b3_sk300_h16_page1", KvFormat::kFp8PerTensor, DType::kBF16, 3, 300, 16, 1, 1, 1},
    {"per_tensor_b3_sk300_h16_page3", KvFormat::kFp8PerTensor, DType::kBF16, 3, 300, 16, 1, 1, 3},
    {"per_tensor_b2_sk600_h128", KvFormat::kFp8PerTensor, DType::kBF16, 2, 600, 128, 1, 1, 64},
    {"per_tensor_b2_sk600_h32_hkv2", KvFormat::kFp8PerTensor, DType::kBF16, 2, 600, 32, 1, 2, 64},
    {"per_tensor_b2_sk600_h16_sq4", KvFormat::kFp8PerTensor, DType::kBF16, 2, 600, 16, 4, 1, 64},
    {"per_tensor_fp16_b4_sk1000_h16", KvFormat::kFp8PerTensor, DType::kFP16, 4, 1000, 16, 1, 1, 64},
    {"per_tensor_fp16_b3_sk300_h48_page1", KvFormat::kFp8PerTensor, DType::kFP16, 3, 300, 48, 1, 1, 1},
    {"v32_b4_sk1000_h16", KvFormat::kFp8DeepSeekV32, DType::kBF16, 4, 1000, 16, 1, 1, 64},
    {"v32_b2_sk8192_h16_split", KvFormat::kFp8DeepSeekV32, DType::kBF16, 2, 8192, 16, 1, 1, 64},
    {"v32_b3_sk700_h64_page16", KvFormat::kFp8DeepSeekV32, DType::kBF16, 3, 700, 64, 1, 1, 16},
    {"v32_b3_sk300_h16_page1", KvFormat::kFp8DeepSeekV32, DType::kBF16, 3, 300, 16, 1, 1, 1},
    {"v32_b2_sk600_h128", KvFormat::kFp8DeepSeekV32, DType::kBF16, 2, 600, 128, 1, 1, 64},
    {"v32_b2_sk600_h32_hkv2", KvFormat::kFp8DeepSeekV32, DType::kBF16, 2, 600, 32, 1, 2, 64},
    {"v32_b2_sk600_h16_sq2", KvFormat::kFp8DeepSeekV32, DType::kBF16, 2, 600, 16, 2, 1, 64},
};

INSTANTIATE_TEST_SUITE_P(Formats, Fp8Decode, ::testing::ValuesIn(kCases),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace etap
