// Variable query lengths (DecodeProblem::varlen_q): validation, the C API, the clamped query spans the
// kernels use, the fp64 reference over packed queries, the problem generator and the conformance sweep.
#include <etap/etap.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <etap/etap.hpp>
#include <etap/reference.hpp>
#include <limits>
#include <set>
#include <string>
#include <vector>

#include "cpu/test_util.hpp"
#include "decode/kernel/params.hpp"
#include "testing/conformance.hpp"
#include "testing/problem.hpp"

namespace etap {
namespace {

using ::etap::test::Contains;
using ::etap::test::fake_address;

constexpr double kInf = std::numeric_limits<double>::infinity();

// ---------------------------------------------------------------------------------------------------------
// Validation

class ValidateVarlen : public ::testing::Test {
 protected:
  ValidateVarlen() {
    problem_.batch = 4;
    problem_.s_q = 4;  // max_seqlen_q
    problem_.h_q = 16;
    problem_.num_pages = 100;
    problem_.max_pages_per_seq = 16;
    problem_.varlen_q = true;
    reset();
  }

  void reset() {
    args_ = make_varlen_args(problem_, total_q_, fake_address<int32_t>(0x700000),
                             fake_address<void>(0x100000), fake_address<void>(0x200000),
                             fake_address<int32_t>(0x300000), fake_address<int32_t>(0x400000),
                             fake_address<void>(0x500000), fake_address<float>(0x600000), 0.1352f, true);
  }

  void expect(StatusCode code, const std::string& text) {
    const Status status = validate(args_);
    EXPECT_EQ(status.code(), code) << status.message();
    EXPECT_TRUE(Contains(status.message(), text));
  }

  DecodeProblem problem_;
  int32_t total_q_ = 11;
  DecodeArgs args_;
};

TEST_F(ValidateVarlen, PackedArgsPass) {
  const Status status = validate(args_);
  EXPECT_TRUE(status.ok()) << status.message();
  EXPECT_EQ(args_.q_seq_stride, 16 * 576);
  EXPECT_EQ(args_.out_seq_stride, 16 * 512);
  EXPECT_EQ(args_.lse_head_stride, total_q_);
  EXPECT_EQ(args_.lse_seq_stride, 1);
}

TEST_F(ValidateVarlen, BatchStridesAreNotRead) {
  args_.q_batch_stride = -5;
  args_.out_batch_stride = 0;
  args_.lse_batch_stride = 3;
  EXPECT_TRUE(validate(args_).ok());
}

TEST_F(ValidateVarlen, NullOffsetsRejected) {
  args_.cu_seqlens_q = nullptr;
  expect(StatusCode::kInvalidArgument, "cu_seqlens_q is null");
}

TEST_F(ValidateVarlen, MisalignedOffsetsRejected) {
  args_.cu_seqlens_q = fake_address<int32_t>(0x700002);
  expect(StatusCode::kInvalidArgument, "cu_seqlens_q must be 4-byte aligned");
}

TEST_F(ValidateVarlen, TotalQMustBePositive) {
  args_.total_q = 0;
  expect(StatusCode::kInvalidArgument, "total_q must be at least 1");
}

TEST_F(ValidateVarlen, OffsetsWithoutTheFlagRejected) {
  args_.problem.varlen_q = false;
  args_.q_batch_stride = int64_t{4} * 16 * 576;
  args_.out_batch_stride = int64_t{4} * 16 * 512;
  args_.lse_batch_stride = int64_t{16} * 4;
  args_.lse_head_stride = 4;
  expect(StatusCode::kInvalidArgument, "problem.varlen_q is false");
}

// FP8 caches under packed queries pass validation (both formats).
TEST_F(ValidateVarlen, Fp8CachesAccepted) {
  for (const KvFormat format : {KvFormat::kFp8PerTensor, KvFormat::kFp8DeepSeekV32}) {
    problem_.kv_format = format;
    problem_.kv_dtype = DType::kFP8E4M3;
    reset();
    if (format == KvFormat::kFp8PerTensor) args_.descale_k = fake_address<float>(0x800000);
    const Status status = validate(args_);
    EXPECT_TRUE(status.ok()) << status.message();
  }
}

TEST_F(ValidateVarlen, MaxSeqlenQBoundsTheRows) {
  problem_.s_q = 257;  // 257 · 16 = 4112 rows > 4096
  reset();
  expect(StatusCode::kUnsupported, "s_q·h_q = 4112");
  problem_.s_q = 0;
  reset();
  expect(StatusCode::kInvalidArgument, "s_q must be at least 1");
}

TEST_F(ValidateVarlen, PackedRowsMustFitInt32) {
  problem_.h_q = 128;
  problem_.s_q = 2;
  total_q_ = std::numeric_limits<int32_t>::max() / 64;
  reset();
  expect(StatusCode::kUnsupported, "packed query rows");
}

TEST_F(ValidateVarlen, OverlappingPackedTokensRejected) {
  args_.q_seq_stride = 576;  // smaller than h_q · d_qk
  expect(StatusCode::kInvalidArgument, "q_seq_stride");
  reset();
  args_.out_seq_stride = 8;
  expect(StatusCode::kInvalidArgument, "out_seq_stride");
  reset();
  args_.lse_head_stride = total_q_ - 1;  // heads overlap in [h_q, total_q]
  expect(StatusCode::kInvalidArgument, "lse_head_stride");
}

TEST_F(ValidateVarlen, NullLseIsAllowed) {
  args_.lse = nullptr;
  args_.lse_head_stride = args_.lse_seq_stride = 0;
  EXPECT_TRUE(validate(args_).ok());
}

TEST_F(ValidateVarlen, WorkspaceIsSizedByMaxSeqlenQ) {
  DecodeProblem fixed = problem_;
  fixed.varlen_q = false;
  const Options options{132, false};
  EXPECT_GT(workspace_bytes(problem_, options), 0u);
  EXPECT_EQ(workspace_bytes(problem_, options), workspace_bytes(fixed, options));
  EXPECT_EQ(plan_bytes(problem_, options), plan_bytes(fixed, options));
}

TEST(VarlenCApi, FieldsRoundTrip) {
  etap_problem p = etap_default_problem();
  EXPECT_EQ(p.varlen_q, 0);
  p.batch = 3;
  p.s_q = 2;
  p.h_q = 64;
  p.num_pages = 10;
  p.max_pages_per_seq = 4;
  p.varlen_q = 1;
  etap_decode_args args;
  etap_make_varlen_args(&p, 5, fake_address<int32_t>(0x700000), fake_address<void>(0x100000),
                        fake_address<void>(0x200000), fake_address<int32_t>(0x300000),
                        fake_address<int32_t>(0x400000), fake_address<void>(0x500000),
                        fake_address<float>(0x600000), 0.1352f, 1, ETAP_LSE_NATURAL, &args);
  EXPECT_EQ(args.problem.varlen_q, 1);
  EXPECT_EQ(args.total_q, 5);
  EXPECT_EQ(args.cu_seqlens_q, fake_address<int32_t>(0x700000));
  EXPECT_EQ(args.lse_head_stride, 5);
  EXPECT_EQ(etap_validate(&args), ETAP_OK) << etap_last_error();
  args.cu_seqlens_q = nullptr;
  EXPECT_EQ(etap_validate(&args), ETAP_INVALID_ARGUMENT);
  EXPECT_TRUE(Contains(etap_last_error(), "cu_seqlens_q"));
}

// ---------------------------------------------------------------------------------------------------------
// The query span the decode and combine kernels derive from cu_seqlens_q (params.hpp)

decoding::KernelParams span_params(const std::vector<int32_t>& cu, int32_t s_q, int32_t total_q) {
  decoding::KernelParams p{};
  p.cu_seqlens_q = cu.data();
  p.s_q = s_q;
  p.total_q = total_q;
  return p;
}

TEST(QuerySpan, FollowsTheOffsets) {
  const std::vector<int32_t> cu = {0, 3, 3, 7};
  const auto p = span_params(cu, 4, 9);
  EXPECT_EQ(decoding::query_span(p, 0).first, 0);
  EXPECT_EQ(decoding::query_span(p, 0).tokens, 3);
  EXPECT_EQ(decoding::query_span(p, 1).tokens, 0);
  EXPECT_EQ(decoding::query_span(p, 2).first, 3);
  EXPECT_EQ(decoding::query_span(p, 2).tokens, 4);
}

TEST(QuerySpan, FixedLengthWithoutOffsets) {
  decoding::KernelParams p{};
  p.s_q = 5;
  EXPECT_EQ(decoding::query_span(p, 17).first, 0);
  EXPECT_EQ(decoding::query_span(p, 17).tokens, 5);
}

// Offsets outside the contract never address outside q/out/lse (total_q tokens) nor past a partial slot
// (s_q tokens).
TEST(QuerySpan, ClampsBrokenOffsets) {
  const std::vector<int32_t> cu = {-4, 2, 1, 30, 8, 12};
  const auto p = span_params(cu, 4, 10);
  for (int32_t r = 0; r < 5; ++r) {
    const decoding::QuerySpan s = decoding::query_span(p, r);
    EXPECT_GE(s.first, 0) << r;
    EXPECT_LE(s.first, 10) << r;
    EXPECT_GE(s.tokens, 0) << r;
    EXPECT_LE(s.tokens, 4) << r;
    EXPECT_LE(s.first + s.tokens, 10) << r;
  }
  EXPECT_EQ(decoding::query_span(p, 1).tokens, 0);  // decreasing: empty
  EXPECT_EQ(decoding::query_span(p, 2).tokens, 4);  // longer than s_q: clamped
  EXPECT_EQ(decoding::query_span(p, 3).first, 10);  // past total_q
  EXPECT_EQ(decoding::query_span(p, 3).tokens, 0);
}

// ---------------------------------------------------------------------------------------------------------
// Problem generator

testing::ProblemSpec varlen_spec(std::vector<int32_t> q_lens, std::vector<int32_t> seqlens, int32_t s_q,
                                 bool causal) {
  testing::ProblemSpec spec;
  spec.batch = static_cast<int32_t>(q_lens.size());
  spec.s_q = s_q;
  spec.h_q = 8;
  spec.h_kv = 2;
  spec.d_qk = 80;
  spec.d_v = 64;
  spec.page_size = 16;
  spec.seqlens = std::move(seqlens);
  spec.causal = causal;
  spec.varlen_q = true;
  spec.q_lens = std::move(q_lens);
  spec.q_pad_tokens = 2;
  return spec;
}

TEST(MakeVarlenProblem, PacksTheQueriesAndPoisonsThePadding) {
  const auto data = testing::make_problem(varlen_spec({2, 0, 3, 1}, {20, 5, 40, 0}, 3, true));
  EXPECT_TRUE(data.problem.varlen_q);
  EXPECT_EQ(data.cu_seqlens_q, (std::vector<int32_t>{0, 2, 2, 5, 6}));
  EXPECT_EQ(data.total_q, 8);
  EXPECT_EQ(data.out_tokens(), 8);
  const int64_t token = int64_t{8} * 80;
  ASSERT_EQ(data.q.size(), static_cast<std::size_t>(8 * token));
  for (int64_t i = 0; i < 6 * token; ++i) ASSERT_FALSE(std::isnan(reference::bf16_to_float(data.q[i]))) << i;
  for (int64_t i = 6 * token; i < 8 * token; ++i)
    ASSERT_TRUE(std::isnan(reference::bf16_to_float(data.q[i])));
  const auto view = data.view();
  EXPECT_EQ(view.cu_seqlens_q, data.cu_seqlens_q.data());
  EXPECT_EQ(view.total_q, 8);
}

TEST(MakeVarlenProblem, RejectsLengthsOutsideMaxSeqlenQ) {
  EXPECT_THROW(testing::make_problem(varlen_spec({2, 4}, {20, 20}, 3, false)), std::invalid_argument);
  EXPECT_THROW(testing::make_problem(varlen_spec({2}, {20, 20}, 3, false)), std::invalid_argument);
  testing::ProblemSpec fixed = varlen_spec({1, 1}, {20, 20}, 3, false);
  fixed.varlen_q = false;
  EXPECT_THROW(testing::make_problem(fixed), std::invalid_argument);
}

TEST(RandomQLens, InRangeWithZerosAndDeterministic) {
  const auto lens = testing::random_q_lens(200, 4, 7);
  EXPECT_EQ(lens, testing::random_q_lens(200, 4, 7));
  EXPECT_NE(lens, testing::random_q_lens(200, 4, 8));
  for (int32_t len : lens) {
    EXPECT_GE(len, 0);
    EXPECT_LE(len, 4);
  }
  EXPECT_NE(std::find(lens.begin(), lens.end(), 0), lens.end());
  EXPECT_NE(std::find(lens.begin(), lens.end(), 4), lens.end());
}

TEST(VarlenPadding, WrittenCountsAndDropKeepsOwnedTokens) {
  const auto data = testing::make_problem(varlen_spec({1, 2}, {20, 20}, 2, false));
  ASSERT_EQ(data.total_q, 5);  // 3 owned + 2 padding
  const std::size_t out_elems = 5 * 8 * 64, lse_elems = 8 * 5;
  std::vector<uint16_t> out(out_elems, 0xFFFF);
  std::vector<float> lse(lse_elems, std::numeric_limits<float>::quiet_NaN());
  for (std::size_t i = 0; i < 3 * 8 * 64; ++i) out[i] = 0x3F80;
  for (int h = 0; h < 8; ++h)
    for (int t = 0; t < 3; ++t) lse[h * 5 + t] = float(h * 10 + t);
  EXPECT_EQ(testing::padding_written(data, out, lse), 0);
  out[4 * 8 * 64] = 0;
  lse[2 * 5 + 4] = 1.f;
  EXPECT_EQ(testing::padding_written(data, out, lse), 2);
  testing::drop_padding(data, &out, &lse);
  EXPECT_EQ(out.size(), 3u * 8 * 64);
  ASSERT_EQ(lse.size(), 8u * 3);
  for (int h = 0; h < 8; ++h)
    for (int t = 0; t < 3; ++t) EXPECT_EQ(lse[h * 3 + t], float(h * 10 + t));
}

// ---------------------------------------------------------------------------------------------------------
// Reference

// Request b of a varlen problem, alone, as a fixed-length problem with s_q = q_len_b.
reference::HostProblem request_alone(const testing::HostData& d, int32_t b) {
  reference::HostProblem hp = d.view();
  hp.problem.batch = 1;
  hp.problem.varlen_q = false;
  hp.problem.s_q = d.cu_seqlens_q[b + 1] - d.cu_seqlens_q[b];
  hp.cu_seqlens_q = nullptr;
  hp.total_q = 0;
  hp.q = d.q.data() + int64_t{d.cu_seqlens_q[b]} * d.problem.h_q * d.problem.d_qk;
  hp.block_table = d.block_table.data() + int64_t{b} * d.problem.max_pages_per_seq;
  hp.seqlens = d.seqlens.data() + b;
  return hp;
}

void expect_varlen_matches_each_request(const testing::ProblemSpec& spec) {
  const auto data = testing::make_problem(spec);
  const DecodeProblem& p = data.problem;
  std::vector<double> out, lse, wabs;
  reference::decode(data.view(), out, lse, LseBase::kNatural, 0, &wabs);
  ASSERT_EQ(out.size(), static_cast<std::size_t>(data.total_q) * p.h_q * p.d_v);
  ASSERT_EQ(lse.size(), static_cast<std::size_t>(data.total_q) * p.h_q);
  for (int32_t b = 0; b < p.batch; ++b) {
    const int32_t first = data.cu_seqlens_q[b], q_len = data.cu_seqlens_q[b + 1] - first;
    if (q_len == 0) continue;
    std::vector<double> one_out, one_lse, one_wabs;
    reference::decode(request_alone(data, b), one_out, one_lse, LseBase::kNatural, 0, &one_wabs);
    for (int32_t t = 0; t < q_len; ++t)
      for (int32_t h = 0; h < p.h_q; ++h) {
        for (int32_t c = 0; c < p.d_v; ++c) {
          const std::size_t packed = ((int64_t{first} + t) * p.h_q + h) * p.d_v + c;
          const std::size_t alone = (int64_t{t} * p.h_q + h) * p.d_v + c;
          ASSERT_EQ(out[packed], one_out[alone]) << "request " << b << " token " << t << " head " << h;
          ASSERT_EQ(wabs[packed], one_wabs[alone]);
        }
        ASSERT_EQ(lse[int64_t{h} * data.total_q + first + t], one_lse[int64_t{h} * q_len + t]);
      }
  }
  // Padding tokens: untouched by any request.
  for (int64_t i = int64_t{data.cu_seqlens_q.back()} * p.h_q * p.d_v; i < static_cast<int64_t>(out.size());
       ++i)
    ASSERT_EQ(out[i], 0.0);
}

TEST(ReferenceVarlen, CausalEqualsEachRequestAlone) {
  expect_varlen_matches_each_request(varlen_spec({2, 0, 3, 1, 3}, {20, 5, 40, 0, 2}, 3, true));
}

TEST(ReferenceVarlen, NonCausalEqualsEachRequestAlone) {
  expect_varlen_matches_each_request(varlen_spec({3, 1, 0, 2}, {33, 17, 9, 1}, 3, false));
}

// Bottom-right alignment per request: the last query token of every request sees every key, the first of a
// request with q_len tokens sees seqlen − q_len + 1.
TEST(ReferenceVarlen, CausalIsAlignedPerRequest) {
  testing::ProblemSpec spec = varlen_spec({1, 3}, {4, 4}, 3, true);
  spec.h_q = spec.h_kv = 1;
  const auto data = testing::make_problem(spec);
  std::vector<double> out, lse;
  reference::decode(data.view(), out, lse);
  reference::HostProblem hp = data.view();
  hp.causal = false;
  std::vector<double> full_out, full_lse;
  reference::decode(hp, full_out, full_lse);
  // Token 0 (request 0's only token) and token 3 (request 1's last) see all 4 keys: as without the mask.
  EXPECT_EQ(lse[0], full_lse[0]);
  EXPECT_EQ(lse[3], full_lse[3]);
  // Request 1's first token sees 2 keys only.
  EXPECT_NE(lse[1], full_lse[1]);
}

TEST(ReferenceVarlen, EmptyRequestWithQueriesGivesZerosAndInfiniteLse) {
  const auto data = testing::make_problem(varlen_spec({2, 2}, {0, 20}, 2, false));
  std::vector<double> out, lse;
  reference::decode(data.view(), out, lse);
  const DecodeProblem& p = data.problem;
  for (int64_t i = 0; i < int64_t{2} * p.h_q * p.d_v; ++i) ASSERT_EQ(out[i], 0.0);
  for (int32_t h = 0; h < p.h_q; ++h) {
    EXPECT_EQ(lse[int64_t{h} * data.total_q + 0], kInf);
    EXPECT_EQ(lse[int64_t{h} * data.total_q + 1], kInf);
    EXPECT_TRUE(std::isfinite(lse[int64_t{h} * data.total_q + 2]));
  }
}

TEST(ReferenceVarlen, BrokenOffsetsThrow) {
  auto data = testing::make_problem(varlen_spec({2, 2}, {10, 20}, 2, false));
  std::vector<double> out, lse;
  data.cu_seqlens_q = {0, 3, 4};  // q_len 3 > s_q 2
  EXPECT_THROW(reference::decode(data.view(), out, lse), std::invalid_argument);
  data.cu_seqlens_q = {1, 2, 4};  // does not start at 0
  EXPECT_THROW(reference::decode(data.view(), out, lse), std::invalid_argument);
  data.cu_seqlens_q = {0, 2, 9};  // past total_q
  EXPECT_THROW(reference::decode(data.view(), out, lse), std::invalid_argument);
}

// ---------------------------------------------------------------------------------------------------------
// Conformance sweep

TEST(ConformanceSweepVarlen, BothSweepsHaveVarlenConfigs) {
  for (bool quick : {false, true}) {
    std::set<int32_t> batches, heads;
    bool causal = false, noncausal = false, gather = false, two_kv = false, one_tile = false, tiles = false;
    int count = 0;
    for (const auto& c : testing::conformance_sweep(quick)) {
      if (!c.varlen_q) continue;
      ++count;
      EXPECT_TRUE(Contains(c.name(), "qvar"));
      const testing::ProblemSpec spec = testing::problem_spec(c);
      EXPECT_TRUE(spec.varlen_q);
      EXPECT_EQ(static_cast<int32_t>(spec.q_lens.size()), c.batch);
      EXPECT_GT(spec.q_pad_tokens, 0) << "the packed padding tokens carry the NaN poison";
      const DecodeProblem p = testing::problem_shape(spec);
      EXPECT_TRUE(p.varlen_q);
      EXPECT_GT(etap::plan_bytes(p, {132, false}), 0u) << c.name();
      batches.insert(c.batch);
      heads.insert(c.h_q);
      (c.causal ? causal : noncausal) = true;
      gather = gather || c.page_size == 1;
      two_kv = two_kv || c.h_kv == 2;
      (c.rows() <= 64 ? one_tile : tiles) = true;
    }
    if (quick) {
      EXPECT_GE(count, 2);
      EXPECT_LE(count, 3);
      EXPECT_TRUE(one_tile && tiles && gather && two_kv);
      continue;
    }
    EXPECT_EQ(batches, (std::set<int32_t>{1, 4, 16, 33}));
    EXPECT_TRUE(heads.count(16) && heads.count(64) && heads.count(128));
    EXPECT_TRUE(causal && noncausal && gather && two_kv && one_tile && tiles);
  }
}

TEST(ConformanceSweepVarlen, SomeRequestsHaveNoQueryTokens) {
  bool zero = false;
  for (const auto& c : testing::conformance_sweep(false))
    if (c.varlen_q && c.batch > 1) {
      const auto lens = testing::problem_spec(c).q_lens;
      zero = zero || std::find(lens.begin(), lens.end(), 0) != lens.end();
    }
  EXPECT_TRUE(zero);
}

}  // namespace
}  // namespace etap
