// What the conformance sweep of `etap check` covers (the sweep itself runs on the GPU).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "common/constants.hpp"
#include "decode/launch/kernel_choice.hpp"
#include "decode/plan/plan.hpp"
#include "decode/plan/row_tiles.hpp"
#include "testing/conformance.hpp"
#include "testing/plan_host.hpp"

namespace etap {
namespace {

using testing::ConformanceConfig;

constexpr int64_t kReferenceCap = int64_t{64} * 4096 * 16;
constexpr std::size_t kMaxConfigsAboveCap = 12;
constexpr std::size_t kMaxQuickConfigs = 48;  // 29 dense + 15 FP8 (conformance.cpp), and a little room

int64_t reference_work(const ConformanceConfig& c) {
  return int64_t{c.batch} * c.seqlen * c.rows();
}

TEST(ConformanceSweep, NamesAreUniqueAndShapesSupported) {
  for (bool quick : {false, true}) {
    std::set<std::string> names;
    for (const auto& c : testing::conformance_sweep(quick)) {
      EXPECT_TRUE(names.insert(c.name()).second) << "duplicate config " << c.name();
      EXPECT_TRUE(c.dtype == DType::kBF16 || c.dtype == DType::kFP16) << c.name();
      // The library accepts the shape (buffer sizes run its validation).
      const DecodeProblem p = testing::problem_shape(testing::problem_spec(c));
      EXPECT_GT(etap::plan_bytes(p, {132, false}), 0u) << c.name();
    }
  }
}

// Part boundaries (plan.hpp): each sweep has a config of equal requests longer than W that the planner runs
// one whole request per part, so the decode kernel is checked on that schedule too.
TEST(ConformanceSweep, BothSweepsRunAPlanOfWholeRequestsLongerThanW) {
  constexpr int kDefaultSms = 132;  // the sweep's num_sms = 0 means the device's: an H100 or H200
  for (bool quick : {false, true}) {
    bool found = false;
    for (const auto& c : testing::conformance_sweep(quick)) {
      if (c.varlen || c.all_empty) continue;
      // The F of the kernel the config runs on, by the launcher's own rule.
      DecodeProblem problem;
      problem.s_q = c.s_q;
      problem.h_q = c.h_q;
      problem.h_kv = c.h_kv;
      problem.varlen_q = c.varlen_q;
      problem.kv_format = c.kv_format;
      const decoding::PlanParams params = decoding::plan_params(
          c.num_sms > 0 ? c.num_sms : kDefaultSms, decoding::row_tiling(c.s_q, c.h_q, c.h_kv).num_tiles,
          decoding::fixed_cost_for(decoding::runs_rows_kernel(problem)));
      const std::vector<int32_t> seqlens(static_cast<std::size_t>(c.batch), c.seqlen);
      const std::vector<int32_t> plan =
          testing::build_plan_host(seqlens.data(), c.batch, c.page_size, c.seqlen, params);
      decoding::PlanHeader h;
      std::memcpy(&h, plan.data(), sizeof(h));
      const int32_t cost = decoding::request_blocks(c.seqlen, c.page_size, c.seqlen) + params.fixed_cost;
      found = found || (h.num_split_requests == 0 && h.work_per_part < cost);
    }
    EXPECT_TRUE(found) << (quick ? "quick sweep" : "full sweep");
  }
}

TEST(ConformanceSweep, FullSweepCoversTheIssueGrid) {
  const auto configs = testing::conformance_sweep(false);
  std::set<std::tuple<int32_t, int32_t, int32_t, int32_t, DType, bool>> points;
  for (const auto& c : configs) points.emplace(c.batch, c.seqlen, c.h_q, c.s_q, c.dtype, c.varlen);
  for (int32_t b : {1, 2, 7, 64})
    for (int32_t s_k : {1, 17, 63, 64, 65, 1000, 4096, 65536})
      for (auto [h_q, s_q] :
           {std::pair{8, 1}, {16, 1}, {32, 1}, {64, 1}, {8, 2}, {16, 2}, {32, 2}, {8, 4}, {16, 4}})
        for (DType dtype : {DType::kBF16, DType::kFP16})
          for (bool varlen : {false, true}) {
            if (varlen && b == 1) continue;
            if (int64_t{b} * s_k * h_q * s_q > kReferenceCap) continue;
            EXPECT_TRUE(points.count({b, s_k, h_q, s_q, dtype, varlen}))
                << "missing b=" << b << " s_k=" << s_k << " h_q=" << h_q << " s_q=" << s_q;
          }
}

TEST(ConformanceSweep, FullSweepStaysWithinTheReferenceBudget) {
  const auto configs = testing::conformance_sweep(false);
  const auto above = std::count_if(configs.begin(), configs.end(),
                                   [](const auto& c) { return reference_work(c) > kReferenceCap; });
  EXPECT_LE(static_cast<std::size_t>(above), kMaxConfigsAboveCap);
  auto has = [&](auto predicate) { return std::any_of(configs.begin(), configs.end(), predicate); };
  EXPECT_TRUE(has([](const auto& c) { return c.batch == 1 && c.seqlen == 65536 && c.rows() == 64; }));
  EXPECT_TRUE(has([](const auto& c) { return c.batch == 2 && c.seqlen == 65536 && c.rows() == 64; }));
  EXPECT_TRUE(has([](const auto& c) { return c.batch == 64 && c.seqlen == 4096 && c.rows() == 64; }));
}

TEST(ConformanceSweep, BothSweepsCoverTheSpecialCases) {
  for (bool quick : {false, true}) {
    const auto configs = testing::conformance_sweep(quick);
    auto has = [&](auto predicate) { return std::any_of(configs.begin(), configs.end(), predicate); };
    for (int32_t rows : {8, 16, 32, 64})
      EXPECT_TRUE(has([rows](const auto& c) { return c.rows() == rows; })) << "R=" << rows;
    EXPECT_TRUE(has([](const auto& c) { return c.varlen && c.batch > 1; })) << "varlen with empty requests";
    EXPECT_TRUE(has([](const auto& c) { return c.all_empty; }));
    EXPECT_TRUE(has([](const auto& c) { return c.s_q > 1 && c.causal; }));
    EXPECT_TRUE(has([](const auto& c) { return c.s_q > 1 && !c.causal; }));
    EXPECT_TRUE(has([](const auto& c) { return c.causal && c.seqlen < c.s_q; }));
    EXPECT_TRUE(has([](const auto& c) { return c.dtype == DType::kFP16; }));
    EXPECT_TRUE(has([](const auto& c) { return c.lse_base == LseBase::kBase2; }));
    EXPECT_TRUE(has([](const auto& c) { return c.input_std > 1.f; }));
    EXPECT_TRUE(has([](const auto& c) { return c.num_sms == 1; }));
    EXPECT_TRUE(has([](const auto& c) { return c.batch == 1 && c.seqlen == 65536; }));
    for (int32_t s_k : {1, 17, 63, 64, 65})
      EXPECT_TRUE(has([s_k](const auto& c) { return c.seqlen == s_k; })) << "tail s_k=" << s_k;
    EXPECT_TRUE(has([](const auto& c) { return c.rows() > 64 && c.h_q > 64; })) << "head chunks";
    EXPECT_TRUE(has([](const auto& c) { return c.rows() > 64 && c.s_q >= 16 && c.causal; })) << "MTP 16";
    EXPECT_TRUE(has([](const auto& c) { return c.h_kv > 1; }));
    for (int32_t page : {1, 16, 128})
      EXPECT_TRUE(has([page](const auto& c) { return c.page_size == page; })) << "page " << page;
    EXPECT_TRUE(has([](const auto& c) { return c.d_qk == 512 && c.d_v == 512; }));
    EXPECT_TRUE(has([](const auto& c) { return c.d_qk == 320 && c.d_v == 256; }));
  }
  const auto full = testing::conformance_sweep(false);
  EXPECT_TRUE(std::any_of(full.begin(), full.end(), [](const auto& c) { return c.rows() == 2048; }));
  for (int32_t page : {1, 3, 8, 16, 32, 48, 80, 128, 192, 256})
    EXPECT_TRUE(std::any_of(full.begin(), full.end(), [page](const auto& c) { return c.page_size == page; }))
        << "page " << page;
  EXPECT_LE(testing::conformance_sweep(true).size(), kMaxQuickConfigs);
}

TEST(ConformanceSweep, NameSaysWhatRuns) {
  ConformanceConfig c;
  c.batch = 7;
  c.seqlen = 1000;
  c.varlen = true;
  c.h_q = 16;
  c.s_q = 2;
  c.causal = true;
  EXPECT_EQ(c.name(), "b7 sk1000 varlen h16 sq2 causal bf16");
  c.dtype = DType::kFP16;
  c.lse_base = LseBase::kBase2;
  c.causal = false;
  c.num_sms = 3;
  EXPECT_EQ(c.name(), "b7 sk1000 varlen h16 sq2 noncausal fp16 lse2 sms3");
}

}  // namespace
}  // namespace etap
