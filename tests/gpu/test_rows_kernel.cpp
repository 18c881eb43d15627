// The rows-on-M kernel (decode/kernel/rows_consumer.cuh), which runs every 64-row tile: conformance against
// the fp64 reference on poisoned inputs over the shapes that reach it (tiling, splits, causal, page sizes,
// h_kv, head dims, fp16, empty requests, many segments per CTA), and an A/B against the transposed kernel
// on the same plan, workspace and inputs.
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <cmath>
#include <etap/etap.hpp>
#include <etap/reference.hpp>
#include <string>
#include <vector>

#include "decode/launch/kernel_choice.hpp"
#include "decode/launch/launch.hpp"
#include "decode/plan/plan.hpp"
#include "decode/plan/row_tiles.hpp"
#include "gpu/gpu_test_util.hpp"
#include "testing/conformance.hpp"
#include "testing/problem.hpp"

namespace etap {
namespace {

using testing::ConformanceConfig;

ConformanceConfig config(int32_t batch, int32_t seqlen, int32_t h_q, int32_t s_q = 1, bool causal = false) {
  ConformanceConfig c;
  c.batch = batch;
  c.seqlen = seqlen;
  c.h_q = h_q;
  c.s_q = s_q;
  c.causal = causal;
  return c;
}

bool runs_rows_kernel(const ConformanceConfig& c) {
  const decoding::RowTiling tiling = decoding::row_tiling(c.s_q, c.h_q, c.h_kv);
  return decoding::use_rows_kernel(tiling.tile_rows(), decoding::KernelChoice::kAuto);
}

std::vector<ConformanceConfig> rows_kernel_configs() {
  std::vector<ConformanceConfig> configs;
  configs.push_back(config(3, 1000, 64));           // one untiled tile, a tail block
  configs.push_back(config(2, 4096, 128));          // two row tiles per request
  configs.push_back(config(1, 8192, 64));           // one request split over many CTAs: partials
  configs.push_back(config(1, 6000, 128));          // split and tiled
  configs.push_back(config(2, 777, 64, 2, true));   // causal MTP, s_q = 2, h_q = 64 (tile = one token)
  configs.push_back(config(2, 1000, 16, 4, true));  // causal, a tile of 4 tokens × 16 heads
  configs.push_back(config(2, 500, 32, 3, true));   // causal, 2 tiles of 2 tokens × 32 heads (1 pad)
  configs.push_back(config(2, 300, 64));            // page size 1 (gather), below
  configs.back().page_size = 1;
  configs.push_back(config(2, 1000, 128));  // h_kv = 2, page 16 (chunks), below
  configs.back().h_kv = 2;
  configs.back().page_size = 16;
  configs.push_back(config(2, 1100, 64));  // page 256
  configs.back().page_size = 256;
  configs.push_back(config(2, 1000, 64));  // fp16
  configs.back().dtype = DType::kFP16;
  configs.push_back(config(2, 1000, 64));  // d 512/512
  configs.back().d_qk = 512;
  configs.back().d_v = 512;
  configs.push_back(config(2, 1000, 64, 2, true));  // d 320/256, fp16, causal
  configs.back().d_qk = 320;
  configs.back().d_v = 256;
  configs.back().dtype = DType::kFP16;
  configs.push_back(config(2, 1000, 128));  // d 320/256, bf16, tiled
  configs.back().d_qk = 320;
  configs.back().d_v = 256;
  configs.push_back(config(7, 500, 64));  // varlen with empty requests
  configs.back().varlen = true;
  configs.push_back(config(3, 100, 64));  // every request empty
  configs.back().all_empty = true;
  configs.push_back(config(6, 2000, 64));  // 2 SMs: many segments per CTA, long parts
  configs.back().num_sms = 2;
  configs.push_back(config(2, 1000, 128));  // large logits (softmax overflow paths)
  configs.back().input_std = 1.5f;
  configs.push_back(config(2, 1, 64));             // one key
  configs.push_back(config(2, 64, 64));            // exactly one block, no tail
  configs.push_back(config(2, 129, 64, 2, true));  // causal, the last block has one key
  configs.back().lse_base = LseBase::kBase2;
  return configs;
}

TEST(RowsKernel, ConfigsReachIt) {
  for (const auto& c : rows_kernel_configs()) EXPECT_TRUE(runs_rows_kernel(c)) << c.name();
}

TEST(RowsKernel, MatchesReference) {
  ETAP_REQUIRE_SM90();
  testing::ConformanceRunner runner;
  for (const auto& c : rows_kernel_configs()) {
    const testing::ConformanceResult result = runner.run(c);
    EXPECT_TRUE(result.pass) << result.name << ": " << result.failure;
  }
}

// out and lse of one decode through decoding::launch_decode with a forced kernel choice.
struct Output {
  std::vector<uint16_t> out;
  std::vector<float> lse;
};

Output decode_with(testing::DeviceData& device, decoding::KernelChoice choice, const Options& options) {
  const DecodeProblem& p = device.args.problem;
  const size_t out_elems = size_t(p.batch) * p.s_q * p.h_q * p.d_v,
               lse_elems = size_t(p.batch) * p.h_q * p.s_q;
  Output result;
  EXPECT_EQ(cudaMemset(device.d_out, 0xFF, out_elems * sizeof(uint16_t)), cudaSuccess);
  EXPECT_EQ(cudaMemset(device.d_lse, 0xFF, lse_elems * sizeof(float)), cudaSuccess);
  const Status planned = plan(device.args, device.d_plan, device.plan_size, nullptr, options);
  EXPECT_TRUE(planned.ok()) << planned.message();
  decoding::PlanHeader header{};
  EXPECT_EQ(cudaMemcpy(&header, device.d_plan, sizeof header, cudaMemcpyDeviceToHost), cudaSuccess);
  const decoding::PlanParams params{header.num_parts, header.fixed_cost};
  EXPECT_EQ(decoding::launch_decode(device.args, static_cast<const int32_t*>(device.d_plan), params,
                                    device.d_workspace, nullptr, choice),
            cudaSuccess);
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  result.out.resize(out_elems);
  result.lse.resize(lse_elems);
  EXPECT_EQ(cudaMemcpy(result.out.data(), device.d_out, out_elems * 2, cudaMemcpyDeviceToHost), cudaSuccess);
  EXPECT_EQ(cudaMemcpy(result.lse.data(), device.d_lse, lse_elems * 4, cudaMemcpyDeviceToHost), cudaSuccess);
  return result;
}

// Both kernels on the same plan and inputs: each within the reference's bound, and the lse of the two close.
TEST(RowsKernel, AgreesWithTransposedKernel) {
  ETAP_REQUIRE_SM90();
  std::vector<ConformanceConfig> configs = {config(2, 1000, 64), config(1, 8192, 128),
                                            config(2, 777, 64, 2, true)};
  configs.push_back(config(2, 300, 128));
  configs.back().h_kv = 2;
  configs.back().page_size = 1;
  for (const auto& c : configs) {
    SCOPED_TRACE(c.name());
    const testing::HostData host = testing::make_problem(testing::problem_spec(c));
    Options options;
    options.num_sms = c.num_sms;
    testing::DeviceData device;
    testing::upload(host, c.lse_base, options, device);
    std::vector<double> ref_out, ref_lse, ref_weighted;
    reference::decode(host.view(), ref_out, ref_lse, c.lse_base, 0, &ref_weighted);
    const Output rows = decode_with(device, decoding::KernelChoice::kAuto, options);
    const Output transposed = decode_with(device, decoding::KernelChoice::kTransposed, options);
    const testing::Comparison rows_cmp =
        testing::compare(rows.out, c.dtype, rows.lse, ref_out, ref_lse, ref_weighted);
    const testing::Comparison transposed_cmp =
        testing::compare(transposed.out, c.dtype, transposed.lse, ref_out, ref_lse, ref_weighted);
    EXPECT_TRUE(rows_cmp.pass) << "rows-on-M: " << rows_cmp.describe();
    EXPECT_TRUE(transposed_cmp.pass) << "transposed: " << transposed_cmp.describe();
    double lse_diff = 0;
    for (size_t i = 0; i < rows.lse.size(); ++i)
      if (std::isfinite(rows.lse[i]) || std::isfinite(transposed.lse[i]))
        lse_diff = std::fmax(lse_diff, std::fabs(double(rows.lse[i]) - transposed.lse[i]));
    EXPECT_LE(lse_diff, 1e-3) << "largest |lse_rows − lse_transposed|";
  }
}

}  // namespace
}  // namespace etap
