// Variable query lengths on the GPU: packed q/out/lse against the fp64 reference (one row tile, several
// tiles with split requests and the combine, h_kv = 2 with the gather path, q_len 0 and seqlen 0 requests),
// the packed tokens no request owns left untouched, a CUDA graph replayed with other query lengths (the plan
// needs no host read of cu_seqlens_q), and checked mode naming a request whose offsets break the contract.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <etap/etap.hpp>
#include <etap/reference.hpp>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "cpu/test_util.hpp"
#include "gpu/gpu_test_util.hpp"
#include "testing/problem.hpp"

namespace etap {
namespace {

using ::etap::test::Contains;

struct VarlenCase {
  const char* name;
  std::vector<int32_t> q_lens, seqlens;
  int32_t s_q, h_q, h_kv, page_size;
  bool causal;
  DType dtype;
  int num_sms;  // 0: all SMs
};

void PrintTo(const VarlenCase& c, std::ostream* os) {
  *os << c.name;
}

testing::ProblemSpec spec_of(const VarlenCase& c) {
  testing::ProblemSpec spec;
  spec.batch = static_cast<int32_t>(c.q_lens.size());
  spec.s_q = c.s_q;
  spec.h_q = c.h_q;
  spec.h_kv = c.h_kv;
  spec.page_size = c.page_size;
  spec.seqlens = c.seqlens;
  spec.causal = c.causal;
  spec.dtype = c.dtype;
  spec.varlen_q = true;
  spec.q_lens = c.q_lens;
  spec.q_pad_tokens = 3;
  return spec;
}

struct Output {
  std::vector<uint16_t> out;
  std::vector<float> lse;
};

Output download(const testing::HostData& host, const testing::DeviceData& device) {
  const DecodeProblem& p = host.problem;
  const auto tokens = static_cast<std::size_t>(host.out_tokens());
  Output o;
  o.out.resize(tokens * p.h_q * p.d_v);
  o.lse.resize(tokens * p.h_q);
  EXPECT_EQ(cudaMemcpy(o.out.data(), device.d_out, o.out.size() * sizeof(uint16_t), cudaMemcpyDeviceToHost),
            cudaSuccess);
  EXPECT_EQ(cudaMemcpy(o.lse.data(), device.d_lse, o.lse.size() * sizeof(float), cudaMemcpyDeviceToHost),
            cudaSuccess);
  return o;
}

// out/lse against the reference; the padding tokens must still hold upload()'s NaN poison.
void expect_matches_reference(const testing::HostData& host, Output o, LseBase base) {
  EXPECT_EQ(testing::padding_written(host, o.out, o.lse), 0) << "wrote packed tokens no request owns";
  std::vector<double> ref_out, ref_lse, ref_wabs;
  reference::decode(host.view(), ref_out, ref_lse, base, 0, &ref_wabs);
  testing::drop_padding(host, &o.out, &o.lse);
  testing::drop_padding(host, &ref_out, &ref_lse, &ref_wabs);
  const testing::Comparison c =
      testing::compare(o.out, host.problem.out_dtype, o.lse, ref_out, ref_lse, ref_wabs);
  EXPECT_TRUE(c.pass) << c.describe();
}

void run_decode(const testing::DeviceData& device, const Options& options, cudaStream_t stream) {
  Status status = plan(device.args, device.d_plan, device.plan_size, stream, options);
  ASSERT_TRUE(status.ok()) << status.message();
  status = decode(device.args, device.d_plan, device.plan_size, device.d_workspace, device.workspace_size,
                  stream, options);
  ASSERT_TRUE(status.ok()) << status.message();
}

class VarlenDecode : public ::testing::TestWithParam<VarlenCase> {};

TEST_P(VarlenDecode, MatchesTheReferenceAndIsBitIdenticalOnRepeat) {
  ETAP_REQUIRE_SM90();
  const VarlenCase& c = GetParam();
  const testing::HostData host = testing::make_problem(spec_of(c));
  const Options options{c.num_sms, false};
  testing::DeviceData device;
  testing::upload(host, LseBase::kNatural, options, device);
  // upload()'s copies and memsets run on the legacy default stream, which a non-blocking stream skips.
  ETAP_CUDA_OK(cudaDeviceSynchronize());
  testing::Stream stream;
  run_decode(device, options, stream.get());
  ETAP_CUDA_OK(cudaStreamSynchronize(stream.get()));
  const Output first = download(host, device);
  expect_matches_reference(host, first, LseBase::kNatural);
  run_decode(device, options, stream.get());
  ETAP_CUDA_OK(cudaStreamSynchronize(stream.get()));
  const Output second = download(host, device);
  EXPECT_EQ(first.out, second.out);
  EXPECT_EQ(std::memcmp(first.lse.data(), second.lse.data(), first.lse.size() * sizeof(float)), 0);
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, VarlenDecode,
    ::testing::Values(
        // R = 64: one row tile, still the tiled kernel; q_len 0 and a seqlen-0 request with queries.
        VarlenCase{"OneTile", {4, 0, 1, 3, 2}, {1000, 300, 65, 0, 2}, 4, 16, 1, 64, true, DType::kBF16, 0},
        // R = 256 on 3 SMs: four row tiles, split requests, the combine over packed rows.
        VarlenCase{"TilesSplit",
                   {4, 1, 0, 3, 4, 2},
                   {4096, 2000, 3000, 64, 5000, 1},
                   4,
                   64,
                   1,
                   64,
                   true,
                   DType::kFP16,
                   3},
        // h_q 128: two head chunks per token; non-causal.
        VarlenCase{"Heads128", {2, 1, 2, 0}, {1000, 17, 4096, 100}, 2, 128, 1, 64, false, DType::kBF16, 0},
        // h_kv 2 and page size 1 (the gather loader).
        VarlenCase{
            "TwoKvHeadsGather", {2, 0, 1, 2, 2}, {65, 1000, 3, 0, 200}, 2, 32, 2, 1, true, DType::kBF16, 0},
        // Every request without query tokens: nothing is written.
        VarlenCase{"AllQLenZero", {0, 0, 0}, {100, 0, 5000}, 4, 16, 1, 64, true, DType::kBF16, 0}),
    [](const ::testing::TestParamInfo<VarlenCase>& info) { return std::string(info.param.name); });

// A captured plan + decode replayed after cu_seqlens_q (and q) change on the device, with total_q and
// max_seqlen_q fixed: the graph gives the new lengths' results, as an engine's speculative step needs.
TEST(VarlenGraph, ReplayFollowsNewQueryLengths) {
  ETAP_REQUIRE_SM90();
  const std::vector<int32_t> seqlens = {3000, 65, 1000, 4000};
  VarlenCase a{"A", {1, 4, 0, 3}, seqlens, 4, 64, 1, 64, true, DType::kBF16, 0};
  VarlenCase b{"B", {4, 0, 2, 2}, seqlens, 4, 64, 1, 64, true, DType::kBF16, 0};  // same total_q (8 + 3)
  const testing::HostData host_a = testing::make_problem(spec_of(a));
  const testing::HostData host_b = testing::make_problem(spec_of(b));
  ASSERT_EQ(host_a.total_q, host_b.total_q);
  ASSERT_EQ(host_a.kv_cache, host_b.kv_cache);
  const Options options{};
  testing::DeviceData device;
  testing::upload(host_a, LseBase::kNatural, options, device);
  ETAP_CUDA_OK(cudaDeviceSynchronize());  // upload() works on the legacy default stream
  testing::Stream stream;

  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  ETAP_CUDA_OK(cudaStreamBeginCapture(stream.get(), cudaStreamCaptureModeGlobal));
  run_decode(device, options, stream.get());
  ETAP_CUDA_OK(cudaStreamEndCapture(stream.get(), &graph));
  ETAP_CUDA_OK(cudaGraphInstantiate(&exec, graph, 0));

  ETAP_CUDA_OK(cudaGraphLaunch(exec, stream.get()));
  ETAP_CUDA_OK(cudaStreamSynchronize(stream.get()));
  expect_matches_reference(host_a, download(host_a, device), LseBase::kNatural);

  // New lengths and queries in the same buffers; out and lse poisoned again.
  ETAP_CUDA_OK(
      cudaMemcpy(device.d_q, host_b.q.data(), host_b.q.size() * sizeof(uint16_t), cudaMemcpyHostToDevice));
  ETAP_CUDA_OK(cudaMemcpy(device.d_cu_seqlens_q, host_b.cu_seqlens_q.data(),
                          host_b.cu_seqlens_q.size() * sizeof(int32_t), cudaMemcpyHostToDevice));
  const std::size_t tokens = static_cast<std::size_t>(host_b.total_q) * host_b.problem.h_q;
  ETAP_CUDA_OK(cudaMemset(device.d_out, 0xFF, tokens * host_b.problem.d_v * sizeof(uint16_t)));
  ETAP_CUDA_OK(cudaMemset(device.d_lse, 0xFF, tokens * sizeof(float)));
  ETAP_CUDA_OK(cudaDeviceSynchronize());  // the memsets ran on the legacy default stream
  ETAP_CUDA_OK(cudaGraphLaunch(exec, stream.get()));
  ETAP_CUDA_OK(cudaStreamSynchronize(stream.get()));
  expect_matches_reference(host_b, download(host_b, device), LseBase::kNatural);
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
}

// Checked mode reports offsets outside the contract and names the request.
TEST(VarlenChecked, ReportsBrokenOffsets) {
  ETAP_REQUIRE_SM90();
  VarlenCase c{"C", {2, 1, 3}, {100, 200, 300}, 3, 16, 1, 64, false, DType::kBF16, 0};
  const testing::HostData host = testing::make_problem(spec_of(c));
  const Options options{0, true};
  testing::DeviceData device;
  testing::upload(host, LseBase::kNatural, options, device);
  // upload()'s copies and memsets run on the legacy default stream, which a non-blocking stream skips.
  ETAP_CUDA_OK(cudaDeviceSynchronize());
  testing::Stream stream;
  run_decode(device, options, stream.get());  // a good problem passes
  ETAP_CUDA_OK(cudaStreamSynchronize(stream.get()));

  for (const auto& [offsets, text] :
       {std::pair{std::vector<int32_t>{0, 2, 1, 4}, std::string("request 1 has cu_seqlens_q[1] = 2")},
        std::pair{std::vector<int32_t>{0, 2, 6, 7}, std::string("request 1 has cu_seqlens_q[1] = 2")},
        std::pair{std::vector<int32_t>{0, 2, 3, 90}, std::string("request 2")},
        std::pair{std::vector<int32_t>{1, 2, 3, 4}, std::string("request 0")}}) {
    ETAP_CUDA_OK(cudaMemcpy(device.d_cu_seqlens_q, offsets.data(), offsets.size() * sizeof(int32_t),
                            cudaMemcpyHostToDevice));
    ETAP_CUDA_OK(cudaDeviceSynchronize());
    const Status status = plan(device.args, device.d_plan, device.plan_size, stream.get(), options);
    ASSERT_TRUE(status.ok()) << status.message();
    const Status checked = decode(device.args, device.d_plan, device.plan_size, device.d_workspace,
                                  device.workspace_size, stream.get(), options);
    EXPECT_EQ(checked.code(), StatusCode::kCheckFailed) << checked.message();
    EXPECT_TRUE(Contains(checked.message(), text));
  }
}

}  // namespace
}  // namespace etap
