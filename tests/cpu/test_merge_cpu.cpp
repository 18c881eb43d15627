// CPU merge of partial attention states, and the argument checks of etap::merge_states (no GPU needed).
#include <gtest/gtest.h>

#include <cmath>
#include <etap/etap.hpp>
#include <etap/reference.hpp>
#include <limits>
#include <numbers>
#include <string>
#include <vector>

#include "testing/problem.hpp"

namespace etap {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// The same request restricted to keys [begin, end), copied into a fresh cache (non-causal).
testing::HostData key_range(const testing::HostData& full, int32_t begin, int32_t end) {
  const DecodeProblem& p = full.problem;
  testing::HostData part = full;
  const int32_t n = end - begin;
  const int32_t pages = (n + p.page_size - 1) / p.page_size;
  const int64_t row = static_cast<int64_t>(p.h_kv) * p.d_qk;
  part.problem.num_pages = std::max(pages, 1);
  part.problem.max_pages_per_seq = std::max(pages, 1);
  part.seqlens = {n};
  part.block_table.resize(part.problem.max_pages_per_seq);
  for (int32_t j = 0; j < part.problem.max_pages_per_seq; ++j) part.block_table[j] = j;
  part.kv_cache.assign(part.problem.num_pages * p.page_size * row, 0);
  for (int32_t t = begin; t < end; ++t) {
    const int32_t page = full.block_table[t / p.page_size];
    const auto* src =
        full.kv_cache.data() + (static_cast<int64_t>(page) * p.page_size + t % p.page_size) * row;
    std::copy(src, src + row, part.kv_cache.begin() + (t - begin) * row);
  }
  return part;
}

testing::HostData one_request(int32_t seqlen, int32_t h_q = 8) {
  testing::ProblemSpec spec;
  spec.batch = 1;
  spec.h_q = h_q;
  spec.seqlen_fixed = seqlen;
  spec.seed = 21;
  return testing::make_problem(spec);
}

// Decodes each key range of request 0 and merges the partial states; compares with the unsplit decode.
void check_split(const std::vector<int32_t>& bounds, LseBase base) {
  const auto full = one_request(bounds.back());
  const DecodeProblem& p = full.problem;
  const int rows = p.s_q * p.h_q, dim = p.d_v;
  std::vector<double> ref_out, ref_lse;
  reference::decode(full.view(), ref_out, ref_lse, base);

  const int num_states = static_cast<int>(bounds.size()) - 1;
  std::vector<double> o_states, lse_states;
  for (int s = 0; s < num_states; ++s) {
    const auto part = key_range(full, bounds[s], bounds[s + 1]);
    std::vector<double> out, lse;
    reference::decode(part.view(), out, lse, base);
    o_states.insert(o_states.end(), out.begin(), out.end());  // [rows, dim] with s_q = 1
    lse_states.insert(lse_states.end(), lse.begin(), lse.end());
  }
  std::vector<double> out(rows * dim), lse(rows);
  reference::merge_states(num_states, rows, dim, o_states.data(), lse_states.data(), base, out.data(),
                          lse.data());
  for (int i = 0; i < rows * dim; ++i) ASSERT_NEAR(out[i], ref_out[i], 1e-12) << i;
  for (int r = 0; r < rows; ++r) EXPECT_NEAR(lse[r], ref_lse[r], 1e-12 * (1 + std::abs(ref_lse[r]))) << r;
}

TEST(MergeCpu, TwoPartsEqualUnsplit) {
  check_split({0, 64, 150}, LseBase::kNatural);
}

TEST(MergeCpu, UnevenPartsEqualUnsplit) {
  check_split({0, 1, 37, 100, 101, 300}, LseBase::kNatural);
}

TEST(MergeCpu, Base2PartsEqualUnsplit) {
  check_split({0, 70, 71, 200}, LseBase::kBase2);
}

TEST(MergeCpu, EmptyPartIsIgnored) {
  // Part [64, 64) has no key: its state is out = 0, lse = +inf.
  check_split({0, 64, 64, 129}, LseBase::kNatural);
}

TEST(MergeCpu, SingleStateIsIdentity) {
  const std::vector<double> o{1, 2, 3, 4, -1, -2, -3, -4};
  const std::vector<double> lse{0.5, -7.0};
  std::vector<double> out(8), lse_out(2);
  reference::merge_states(1, 2, 4, o.data(), lse.data(), LseBase::kNatural, out.data(), lse_out.data());
  EXPECT_EQ(out, o);
  EXPECT_EQ(lse_out, lse);
}

TEST(MergeCpu, EqualLsesAverageAndAddLog2) {
  const std::vector<double> o{1, 2, 3, 4, 3, 2, 1, 0};  // [2 states, 1 row, 4]
  const std::vector<double> lse{1.25, 1.25};
  std::vector<double> out(4);
  double lse_out = 0;
  reference::merge_states(2, 1, 4, o.data(), lse.data(), LseBase::kNatural, out.data(), &lse_out);
  EXPECT_EQ(out, (std::vector<double>{2, 2, 2, 2}));
  EXPECT_NEAR(lse_out, 1.25 + std::numbers::ln2, 1e-15);
  reference::merge_states(2, 1, 4, o.data(), lse.data(), LseBase::kBase2, out.data(), &lse_out);
  EXPECT_NEAR(lse_out, 2.25, 1e-15);  // log2(2^1.25 + 2^1.25)
}

TEST(MergeCpu, InfiniteLseStatesWeighNothing) {
  // State 1 is empty (+inf), state 2 is empty (-inf); their o is garbage and must not leak.
  const std::vector<double> o{1, 2, 3, 4, kNaN, kNaN, kNaN, kNaN, 1e300, -1e300, kInf, 5};
  const std::vector<double> lse{0.75, kInf, -kInf};
  std::vector<double> out(4);
  double lse_out = 0;
  reference::merge_states(3, 1, 4, o.data(), lse.data(), LseBase::kNatural, out.data(), &lse_out);
  EXPECT_EQ(out, (std::vector<double>{1, 2, 3, 4}));
  EXPECT_EQ(lse_out, 0.75);
}

TEST(MergeCpu, AllEmptyRowGivesZeroAndInfinity) {
  const std::vector<double> o{kNaN, 1, 2, 3, 4, 5, 6, 7};
  const std::vector<double> lse{kInf, kInf};
  std::vector<double> out(4, 9.0);
  double lse_out = 0;
  reference::merge_states(2, 1, 4, o.data(), lse.data(), LseBase::kNatural, out.data(), &lse_out);
  EXPECT_EQ(out, (std::vector<double>(4, 0.0)));
  EXPECT_EQ(lse_out, kInf);
}

TEST(MergeCpu, FarApartLsesDoNotOverflow) {
  const std::vector<double> o{1, 1, 1, 1, 2, 2, 2, 2};
  const std::vector<double> lse{1000.0, 0.0};
  std::vector<double> out(4);
  double lse_out = 0;
  reference::merge_states(2, 1, 4, o.data(), lse.data(), LseBase::kNatural, out.data(), &lse_out);
  for (double x : out) EXPECT_NEAR(x, 1.0, 1e-300);
  EXPECT_EQ(lse_out, 1000.0);
}

TEST(MergeCpu, NullLseOutIsAllowed) {
  const std::vector<double> o{1, 2, 3, 4, 5, 6, 7, 8};
  const std::vector<double> lse{0.0, 0.0};
  std::vector<double> out(4);
  reference::merge_states(2, 1, 4, o.data(), lse.data(), LseBase::kNatural, out.data(), nullptr);
  EXPECT_EQ(out, (std::vector<double>{3, 4, 5, 6}));
}

// ---------------------------------------------------------------------------------------------------------
// etap::merge_states argument checks: rejected before any CUDA call.

struct MergeArgsFixture : ::testing::Test {
  alignas(16) float o[2 * 3 * 8] = {};
  float lse[2 * 3] = {};
  alignas(16) float out[3 * 8] = {};
  MergeArgs args;
  void SetUp() override {
    args.num_states = 2;
    args.rows = 3;
    args.dim = 8;
    args.o_states = o;
    args.o_state_stride = 3 * 8;
    args.o_row_stride = 8;
    args.lse_states = lse;
    args.lse_state_stride = 3;
    args.out = out;
    args.out_dtype = DType::kFP32;
    args.out_row_stride = 8;
  }
  void expect_invalid(const std::string& fragment) {
    const Status status = merge_states(args, nullptr);
    EXPECT_EQ(status.code(), StatusCode::kInvalidArgument) << status.message();
    EXPECT_NE(status.message().find(fragment), std::string::npos) << status.message();
    EXPECT_EQ(status.message().rfind("merge_states: ", 0), 0u) << status.message();
  }
};

TEST_F(MergeArgsFixture, DimNotMultipleOfFour) {
  args.dim = 30;
  expect_invalid("dim must be a positive multiple of 4; got 30");
}

TEST_F(MergeArgsFixture, ZeroDim) {
  args.dim = 0;
  expect_invalid("got 0");
}

TEST_F(MergeArgsFixture, NoStates) {
  args.num_states = 0;
  expect_invalid("num_states must be >= 1");
}

TEST_F(MergeArgsFixture, NegativeRows) {
  args.rows = -1;
  expect_invalid("rows must be >= 0");
}

TEST_F(MergeArgsFixture, NullPointers) {
  args.o_states = nullptr;
  expect_invalid("o_states is null");
  SetUp();
  args.lse_states = nullptr;
  expect_invalid("lse_states is null");
  SetUp();
  args.out = nullptr;
  expect_invalid("out is null");
}

TEST_F(MergeArgsFixture, MisalignedStates) {
  args.o_states = o + 1;
  expect_invalid("16-byte aligned");
  SetUp();
  args.o_state_stride = 26;
  expect_invalid("multiples of 4 elements");
}

TEST_F(MergeArgsFixture, BadOutput) {
  args.out_dtype = DType::kFP8E4M3;
  expect_invalid("out_dtype must be bf16, fp16 or fp32");
  SetUp();
  args.out_row_stride = 4;
  expect_invalid("rows would overlap");
  SetUp();
  args.out_row_stride = 10;
  expect_invalid("out_row_stride must be a multiple of 4");
}

TEST_F(MergeArgsFixture, ZeroRowsIsANoOp) {
  args.rows = 0;
  args.o_states = nullptr;
  args.out = nullptr;
  EXPECT_TRUE(merge_states(args, nullptr).ok());
}

}  // namespace
}  // namespace etap
