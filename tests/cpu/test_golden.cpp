// The CPU reference against the independent fp64 golden cases (tests/data/golden).
#include <gtest/gtest.h>

#include <cmath>
#include <etap/reference.hpp>
#include <limits>
#include <numbers>
#include <stdexcept>
#include <string>
#include <tuple>

#include "testing/golden.hpp"
#include "testing/problem.hpp"

namespace etap {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
// Both sides accumulate in fp64; only the summation order differs (the golden script uses math.fsum).
constexpr double kFp64Tolerance = 1e-11;
const std::string kGoldenDir = std::string(ETAP_TEST_DATA_DIR) + "/golden";

class GoldenReference : public ::testing::TestWithParam<std::tuple<std::string, LseBase>> {};

TEST_P(GoldenReference, MatchesOutAndLse) {
  const auto& [name, base] = GetParam();
  const testing::GoldenCase g = testing::load_golden(kGoldenDir, name);
  ASSERT_EQ(g.base, LseBase::kNatural);
  std::vector<double> out, lse;
  reference::decode(g.data.view(), out, lse, base);
  ASSERT_EQ(out.size(), g.out.size());
  ASSERT_EQ(lse.size(), g.lse.size());
  for (std::size_t i = 0; i < out.size(); ++i)
    ASSERT_NEAR(out[i], g.out[i], kFp64Tolerance) << name << " out[" << i << "]";
  const double scale = base == LseBase::kBase2 ? std::numbers::log2e : 1.0;
  for (std::size_t i = 0; i < lse.size(); ++i) {
    if (std::isinf(g.lse[i])) {
      EXPECT_EQ(lse[i], kInf) << name << " lse[" << i << "]";
    } else {
      EXPECT_NEAR(lse[i], g.lse[i] * scale, kFp64Tolerance * (1 + std::abs(g.lse[i])))
          << name << " lse[" << i << "]";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllCases, GoldenReference,
                         ::testing::Combine(::testing::ValuesIn(testing::golden_case_names()),
                                            ::testing::Values(LseBase::kNatural, LseBase::kBase2)),
                         [](const auto& info) {
                           return std::get<0>(info.param) +
                                  (std::get<1>(info.param) == LseBase::kNatural ? "_natural" : "_base2");
                         });

TEST(Golden, ListsFiveCases) {
  const auto names = testing::golden_case_names();
  ASSERT_EQ(names.size(), 5u);
  EXPECT_EQ(names.front(), "case1_tails");
  EXPECT_EQ(names.back(), "case5_mtp4_h8");
}

TEST(Golden, LoaderReadsMetadataAndPoison) {
  const testing::GoldenCase g = testing::load_golden(kGoldenDir, "case1_tails");
  const DecodeProblem& p = g.data.problem;
  EXPECT_EQ(p.batch, 3);
  EXPECT_EQ(p.s_q, 1);
  EXPECT_EQ(p.h_q, 16);
  EXPECT_EQ(p.d_qk, 576);
  EXPECT_EQ(p.d_v, 512);
  EXPECT_EQ(p.page_size, 64);
  EXPECT_EQ(p.num_pages, 8);
  EXPECT_EQ(p.max_pages_per_seq, 5);
  EXPECT_EQ(g.data.seqlens, (std::vector<int32_t>{1, 64, 200}));
  EXPECT_NEAR(g.data.softmax_scale, 0.1352337788608801, 1e-16);
  EXPECT_FALSE(g.data.causal);
  EXPECT_EQ(g.data.block_table[1], kPaddingPageId);
  // Slot 1 of request 0's page is owned by nobody: NaN.
  const int64_t slot = static_cast<int64_t>(g.data.block_table[0]) * p.page_size + 1;
  EXPECT_TRUE(std::isnan(reference::bf16_to_float(g.data.kv_cache[slot * p.d_qk])));
  EXPECT_EQ(g.out.size(), 3u * 16 * 512);
  EXPECT_EQ(g.lse.size(), 3u * 16);
}

TEST(Golden, EmptyRowsAreZeroWithInfiniteLse) {
  const testing::GoldenCase empty = testing::load_golden(kGoldenDir, "case3_empty");
  EXPECT_EQ(empty.data.seqlens[0], 0);
  for (int h = 0; h < empty.data.problem.h_q; ++h) EXPECT_EQ(empty.lse[h], kInf);
  for (int i = 0; i < empty.data.problem.h_q * empty.data.problem.d_v; ++i) ASSERT_EQ(empty.out[i], 0.0);

  // case5: s_q = 4, seqlen 3: token 0 of request 0 sees no key, tokens 1..3 do.
  const testing::GoldenCase mtp = testing::load_golden(kGoldenDir, "case5_mtp4_h8");
  const DecodeProblem& p = mtp.data.problem;
  ASSERT_EQ(p.s_q, 4);
  for (int h = 0; h < p.h_q; ++h) {
    EXPECT_EQ(mtp.lse[h * p.s_q + 0], kInf);
    for (int i = 1; i < p.s_q; ++i) EXPECT_TRUE(std::isfinite(mtp.lse[h * p.s_q + i]));
  }
}

TEST(Golden, Bf16RoundedGoldenPassesCompare) {
  for (const auto& name : testing::golden_case_names()) {
    const testing::GoldenCase g = testing::load_golden(kGoldenDir, name);
    std::vector<uint16_t> out_bits(g.out.size());
    for (std::size_t i = 0; i < g.out.size(); ++i)
      out_bits[i] = reference::float_to_bf16(static_cast<float>(g.out[i]));
    std::vector<float> lse(g.lse.begin(), g.lse.end());
    std::vector<double> out, ref_lse, weighted_abs;
    reference::decode(g.data.view(), out, ref_lse, g.base, 0, &weighted_abs);
    const testing::Comparison c = testing::compare(out_bits, DType::kBF16, lse, g.out, g.lse, weighted_abs);
    EXPECT_TRUE(c.pass) << name << ": " << c.describe();
  }
}

TEST(Golden, MissingCaseThrowsWithPath) {
  try {
    testing::load_golden(kGoldenDir, "no_such_case");
    FAIL() << "expected an exception";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("no_such_case.json"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace etap
