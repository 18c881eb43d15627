// The plan kernel against its host twin, word for word, through the public etap::plan().
#include <gtest/gtest.h>

#include <cstdint>
#include <etap/etap.hpp>
#include <random>
#include <utility>
#include <vector>

#include "decode/launch/kernel_choice.hpp"
#include "decode/plan/plan.hpp"
#include "decode/plan/row_tiles.hpp"
#include "gpu/gpu_test_util.hpp"
#include "testing/plan_host.hpp"

namespace etap {
namespace {

constexpr int kPageSize = 64;
constexpr int kNumSms = 132;
constexpr int kPoisonByte = 0x7f;  // every plan word must be overwritten
constexpr std::size_t kStandInBytes = 256;

using ::etap::test::DeviceBuffer;

struct PlanCase {
  std::vector<int32_t> seqlens;
  int32_t max_pages;
  int num_sms = kNumSms;
  int32_t s_q = 1, h_q = 16;
};

DecodeProblem problem_of(const PlanCase& c) {
  DecodeProblem p;
  p.batch = static_cast<int32_t>(c.seqlens.size());
  p.s_q = c.s_q;
  p.h_q = c.h_q;
  p.num_pages = 1;  // the planner never reads the cache
  p.max_pages_per_seq = c.max_pages;
  return p;
}

// Runs etap::plan (optionally inside a CUDA graph) and returns the plan buffer.
std::vector<int32_t> gpu_plan(const PlanCase& c, bool in_graph = false) {
  const DecodeProblem problem = problem_of(c);
  const Options options{c.num_sms, false};
  const std::size_t bytes = plan_bytes(problem, options);
  EXPECT_GT(bytes, 0u);
  DeviceBuffer plan_buffer(bytes), seqlens(c.seqlens.size() * sizeof(int32_t)), stand_in(kStandInBytes);
  EXPECT_NE(plan_buffer.get(), nullptr);
  EXPECT_EQ(
      cudaMemcpy(seqlens.get(), c.seqlens.data(), c.seqlens.size() * sizeof(int32_t), cudaMemcpyHostToDevice),
      cudaSuccess);
  // q, kv, block_table and out are never read by the planner: one small buffer stands in for them.
  const DecodeArgs args =
      make_dense_args(problem, stand_in.get(), stand_in.get(), static_cast<int32_t*>(stand_in.get()),
                      static_cast<int32_t*>(seqlens.get()), stand_in.get(), nullptr, 0.1352f, false);
  cudaStream_t stream = nullptr;
  EXPECT_EQ(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), cudaSuccess);
  // On the plan's own stream: a cudaMemset runs on the legacy default stream, which this non-blocking stream
  // does not wait for, and with another process on the GPU it landed after the plan kernel (2026-12-02f run
  // 2: word 405 read back as the poison in 14 of 10 × 19 tests).
  EXPECT_EQ(cudaMemsetAsync(plan_buffer.get(), kPoisonByte, bytes, stream), cudaSuccess);
  if (in_graph) {
    cudaGraph_t graph = nullptr;
    cudaGraphExec_t exec = nullptr;
    EXPECT_EQ(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal), cudaSuccess);
    const Status status = plan(args, plan_buffer.get(), bytes, stream, options);
    EXPECT_TRUE(status.ok()) << status.message();
    EXPECT_EQ(cudaStreamEndCapture(stream, &graph), cudaSuccess);
    EXPECT_EQ(cudaGraphInstantiate(&exec, graph, 0), cudaSuccess);
    EXPECT_EQ(cudaGraphLaunch(exec, stream), cudaSuccess);
    EXPECT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
    cudaGraphExecDestroy(exec);
    cudaGraphDestroy(graph);
  } else {
    const Status status = plan(args, plan_buffer.get(), bytes, stream, options);
    EXPECT_TRUE(status.ok()) << status.message();
  }
  std::vector<int32_t> result(bytes / sizeof(int32_t));
  EXPECT_EQ(cudaMemcpyAsync(result.data(), plan_buffer.get(), bytes, cudaMemcpyDeviceToHost, stream),
            cudaSuccess);
  EXPECT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
  cudaStreamDestroy(stream);
  return result;
}

void expect_matches_host(const PlanCase& c, bool in_graph = false) {
  const DecodeProblem problem = problem_of(c);
  const auto params =
      decoding::plan_params(c.num_sms, decoding::row_tiling(problem.s_q, problem.h_q, problem.h_kv).num_tiles,
                            decoding::fixed_cost_for(decoding::runs_rows_kernel(problem)));
  const std::vector<int32_t> expected =
      testing::build_plan_host(c.seqlens.data(), problem.batch, kPageSize, c.max_pages, params);
  const std::vector<int32_t> actual = gpu_plan(c, in_graph);
  ASSERT_EQ(actual.size(), expected.size());
  for (std::size_t k = 0; k < expected.size(); ++k)
    ASSERT_EQ(actual[k], expected[k]) << "first differing plan word " << k << " of " << expected.size();
}

std::vector<int32_t> random_seqlens(int32_t batch, int32_t max_len, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int32_t> len(0, max_len);
  std::vector<int32_t> s(batch);
  for (auto& v : s) v = len(rng);
  return s;
}

TEST(PlanGpu, SingleRequest8K) {
  ETAP_REQUIRE_SM90();
  expect_matches_host({{8192}, 128});
}

TEST(PlanGpu, SingleRequestOneMillionTokens) {
  ETAP_REQUIRE_SM90();
  expect_matches_host({{1 << 20}, (1 << 20) / kPageSize});
}

TEST(PlanGpu, Batch4096Short) {
  ETAP_REQUIRE_SM90();
  expect_matches_host({random_seqlens(4096, 300, 7), 8});
}

TEST(PlanGpu, AllZeroLengths) {
  ETAP_REQUIRE_SM90();
  expect_matches_host({std::vector<int32_t>(100, 0), 4});
}

TEST(PlanGpu, RandomAcrossChunkBoundaries) {
  ETAP_REQUIRE_SM90();
  for (const int32_t batch : {1023, 1024, 1025, 3000})
    expect_matches_host({random_seqlens(batch, 5000, static_cast<uint32_t>(batch)), 80});
}

TEST(PlanGpu, LargeBatch) {
  ETAP_REQUIRE_SM90();
  expect_matches_host({random_seqlens(70000, 1000, 11), 16});
}

TEST(PlanGpu, MorePartsThanThreads) {
  ETAP_REQUIRE_SM90();
  expect_matches_host({random_seqlens(50, 200000, 3), 4096, 3000});
}

TEST(PlanGpu, OneSm) {
  ETAP_REQUIRE_SM90();
  expect_matches_host({random_seqlens(20, 5000, 5), 80, 1});
}

TEST(PlanGpu, MtpRows) {
  ETAP_REQUIRE_SM90();
  expect_matches_host({random_seqlens(16, 20000, 9), 320, kNumSms, 4, 16});
}

TEST(PlanGpu, ClampsSeqlensToTheBlockTable) {
  ETAP_REQUIRE_SM90();
  expect_matches_host({{-5, 10000, 64, 0, 1 << 30}, 4});
}

// Part boundaries (issue 9): batches of equal requests where a grid of whole requests wins (b = 128, 256 at
// 4K; 128 at 8K), their neighbours, and nearly equal lengths, where snapped and unsnapped grids compete.
TEST(PlanGpu, EqualRequestBatches) {
  ETAP_REQUIRE_SM90();
  for (const auto& [batch, seqlen] : std::vector<std::pair<int32_t, int32_t>>{
           {128, 4096}, {128, 8192}, {256, 4096}, {64, 4096}, {64, 8192}, {16, 8192}, {127, 4096}, {1, 8192}})
    expect_matches_host({std::vector<int32_t>(batch, seqlen), 256});
}

TEST(PlanGpu, NearlyEqualRequests) {
  ETAP_REQUIRE_SM90();
  for (const int32_t batch : {128, 131, 256, 263}) {
    std::vector<int32_t> seqlens = random_seqlens(batch, 3 * kPageSize, static_cast<uint32_t>(batch) + 100);
    for (auto& s : seqlens) s += 4000;
    expect_matches_host({seqlens, 128});
  }
}

// The cost prefix is searched in shared memory up to a batch of 8191 and in the plan buffer beyond.
TEST(PlanGpu, AroundTheSharedPrefixCapacity) {
  ETAP_REQUIRE_SM90();
  for (const int32_t batch : {8190, 8191, 8192, 8193})
    expect_matches_host({random_seqlens(batch, 700, static_cast<uint32_t>(batch)), 16});
}

// 1024 parts: up to 16 grids × 1024 parts of scoring work, several rounds of the CTA.
TEST(PlanGpu, ManyPartsManyGrids) {
  ETAP_REQUIRE_SM90();
  expect_matches_host({std::vector<int32_t>(1000, 64 * kPageSize), 64, 3000});
  expect_matches_host({random_seqlens(3000, 100000, 21), 2048, 3000});
}

// The small-batch kernel (b ≤ 256 and P ≤ 248 on 256 threads, b ≤ 512 and P ≤ 496 on 512) and the general
// one on either side of each switch, random lengths and equal ones.
TEST(PlanGpu, BatchesAroundTheSmallKernelLimits) {
  ETAP_REQUIRE_SM90();
  for (const int32_t batch : {1, 2, 31, 32, 33, 63, 64, 100, 255, 256, 257, 300, 511, 512, 513, 1024}) {
    SCOPED_TRACE(batch);
    expect_matches_host({random_seqlens(batch, 9000, static_cast<uint32_t>(batch) + 500), 160});
    expect_matches_host({std::vector<int32_t>(batch, 4096), 64});
    expect_matches_host({std::vector<int32_t>(batch, 1000), 16});
  }
}

// Part counts around the small kernel's limits (31 parts per warp): 248 | 249 and 496 | 497 parts.
TEST(PlanGpu, PartsAroundTheSmallKernelLimits) {
  ETAP_REQUIRE_SM90();
  for (const int num_sms : {1, 2, 31, 32, 62, 63, 247, 248, 249, 250, 495, 496, 497, 1023}) {
    SCOPED_TRACE(num_sms);
    for (const int32_t batch : {1, 100, 256, 400})
      expect_matches_host(
          {random_seqlens(batch, 30000, static_cast<uint32_t>(num_sms * 7 + batch)), 480, num_sms});
  }
}

// Long contexts: W ≥ 464 gives 16 candidate grids (four passes of the small kernel's lockstep search).
TEST(PlanGpu, SixteenCandidateGrids) {
  ETAP_REQUIRE_SM90();
  expect_matches_host({std::vector<int32_t>(64, 65536), 1024});
  expect_matches_host({std::vector<int32_t>(256, 16384), 256});
  expect_matches_host({random_seqlens(200, 60000, 31), 1024});
  expect_matches_host({random_seqlens(500, 40000, 32), 1024});
  std::vector<int32_t> nearly = random_seqlens(128, 3 * kPageSize, 33);
  for (auto& v : nearly) v += 30000;
  expect_matches_host({nearly, 512});
}

// The rows-on-M kernel's fixed cost F = 8 (64-row tiles), MTP row tiles, zero lengths and clamping, small b.
TEST(PlanGpu, SmallBatchesWithOtherFixedCostsAndTiles) {
  ETAP_REQUIRE_SM90();
  for (const int32_t batch : {1, 16, 132, 256}) {
    SCOPED_TRACE(batch);
    expect_matches_host(
        {random_seqlens(batch, 9000, static_cast<uint32_t>(batch) + 900), 160, kNumSms, 1, 64});
    expect_matches_host(
        {random_seqlens(batch, 9000, static_cast<uint32_t>(batch) + 901), 160, kNumSms, 1, 128});
    expect_matches_host(
        {random_seqlens(batch, 20000, static_cast<uint32_t>(batch) + 902), 320, kNumSms, 4, 64});
    expect_matches_host({std::vector<int32_t>(batch, 0), 4});
    std::vector<int32_t> padded = random_seqlens(batch, 5000, static_cast<uint32_t>(batch) + 903);
    for (std::size_t i = padded.size() / 2; i < padded.size(); ++i) padded[i] = 0;
    expect_matches_host({padded, 80});
    std::vector<int32_t> clamped = random_seqlens(batch, 40000, static_cast<uint32_t>(batch) + 904);
    clamped.front() = -3;
    expect_matches_host({clamped, 100});
  }
}

TEST(PlanGpu, CapturedInCudaGraph) {
  ETAP_REQUIRE_SM90();
  expect_matches_host({random_seqlens(300, 9000, 13), 160}, true);
  expect_matches_host({random_seqlens(16, 9000, 14), 160}, true);
  expect_matches_host({random_seqlens(2000, 900, 15), 16}, true);
}

}  // namespace
}  // namespace etap
