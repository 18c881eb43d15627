// CPU reference: conversions and decode invariants.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <etap/reference.hpp>
#include <limits>
#include <numbers>
#include <random>
#include <stdexcept>
#include <vector>

#include "testing/problem.hpp"

namespace etap {
namespace {

using reference::bf16_to_float;
using reference::float_to_bf16;
using reference::float_to_fp16;
using reference::fp16_to_float;

constexpr double kInf = std::numeric_limits<double>::infinity();

// ---------------------------------------------------------------------------------------------------------
// Conversions

// Every 16-bit pattern survives widening and narrowing again (NaN stays NaN).
void expect_round_trips(float (*widen)(uint16_t), uint16_t (*narrow)(float)) {
  for (uint32_t bits = 0; bits <= 0xFFFF; ++bits) {
    const float f = widen(static_cast<uint16_t>(bits));
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(widen(narrow(f)))) << bits;
    } else {
      EXPECT_EQ(narrow(f), static_cast<uint16_t>(bits)) << bits;
    }
  }
}

TEST(Conversions, Bf16RoundTripsEveryPattern) {
  expect_round_trips(bf16_to_float, float_to_bf16);
}

TEST(Conversions, Bf16RoundsToNearestEven) {
  EXPECT_EQ(float_to_bf16(1.0f + 0x1p-8f), 0x3F80);             // tie -> even mantissa 0
  EXPECT_EQ(float_to_bf16(1.0f + 3 * 0x1p-8f), 0x3F82);         // tie -> even mantissa 2
  EXPECT_EQ(float_to_bf16(1.0f + 0x1p-8f + 0x1p-20f), 0x3F81);  // above the tie
  EXPECT_EQ(float_to_bf16(-1.0f - 0x1p-8f), 0xBF80);
}

TEST(Conversions, Bf16KeepsInfinityAndNaN) {
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(float_to_bf16(inf), 0x7F80);
  EXPECT_EQ(float_to_bf16(-inf), 0xFF80);
  EXPECT_EQ(float_to_bf16(std::numeric_limits<float>::max()), 0x7F80);  // rounds up to Inf
  const uint16_t nan = float_to_bf16(std::numeric_limits<float>::quiet_NaN());
  EXPECT_TRUE(std::isnan(bf16_to_float(nan)));
  // A signalling NaN whose payload sits only in the low 16 bits must not turn into Inf.
  EXPECT_TRUE(std::isnan(bf16_to_float(float_to_bf16(std::bit_cast<float>(0x7F800001u)))));
}

TEST(Conversions, Fp16RoundTripsEveryPattern) {
  expect_round_trips(fp16_to_float, float_to_fp16);
}

TEST(Conversions, Fp16KnownValues) {
  EXPECT_EQ(float_to_fp16(1.0f), 0x3C00);
  EXPECT_EQ(float_to_fp16(1.0f + 0x1p-11f), 0x3C00);      // tie -> even
  EXPECT_EQ(float_to_fp16(1.0f + 3 * 0x1p-11f), 0x3C02);  // tie -> even
  EXPECT_EQ(float_to_fp16(65504.f), 0x7BFF);
  EXPECT_EQ(float_to_fp16(65519.f), 0x7BFF);
  EXPECT_EQ(float_to_fp16(65520.f), 0x7C00);       // rounds to Inf
  EXPECT_EQ(float_to_fp16(0x1p-14f), 0x0400);      // smallest normal
  EXPECT_EQ(float_to_fp16(0x1p-24f), 0x0001);      // smallest subnormal
  EXPECT_EQ(float_to_fp16(0x1p-25f), 0x0000);      // tie -> even (0)
  EXPECT_EQ(float_to_fp16(3 * 0x1p-25f), 0x0002);  // tie -> even (2)
  EXPECT_EQ(float_to_fp16(-0.0f), 0x8000);
  EXPECT_EQ(float_to_fp16(-std::numeric_limits<float>::infinity()), 0xFC00);
  EXPECT_TRUE(std::isnan(fp16_to_float(float_to_fp16(std::numeric_limits<float>::quiet_NaN()))));
  EXPECT_EQ(fp16_to_float(0x0001), 0x1p-24f);
  EXPECT_EQ(fp16_to_float(0xC000), -2.0f);
}

#if defined(__FLT16_MAX__)
TEST(Conversions, Fp16MatchesCompilerRounding) {
  std::mt19937 rng(7);
  std::uniform_int_distribution<uint32_t> bits;
  for (int i = 0; i < 200000; ++i) {
    // Exponents around the fp16 range, so that subnormals, normals and overflow all occur.
    const uint32_t x = (bits(rng) & 0x807FFFFFu) | ((100u + bits(rng) % 48u) << 23);
    const float f = std::bit_cast<float>(x);
    const auto expected = std::bit_cast<uint16_t>(static_cast<_Float16>(f));
    ASSERT_EQ(float_to_fp16(f), expected) << std::hexfloat << f;
  }
}
#endif

TEST(Conversions, HalfBitsDispatchOnDtype) {
  EXPECT_EQ(reference::half_bits_to_float(0x3F80, DType::kBF16), 1.0f);
  EXPECT_EQ(reference::half_bits_to_float(0x3C00, DType::kFP16), 1.0f);
  EXPECT_EQ(reference::float_to_half_bits(2.0f, DType::kBF16), 0x4000);
  EXPECT_EQ(reference::float_to_half_bits(2.0f, DType::kFP16), 0x4000);
  EXPECT_THROW(reference::half_bits_to_float(0, DType::kFP8E4M3), std::invalid_argument);
  EXPECT_THROW(reference::float_to_half_bits(0.f, DType::kFP32), std::invalid_argument);
}

// ---------------------------------------------------------------------------------------------------------
// Decode

// Straightforward loops over the same conventions, to check the blocked, threaded reference.
void naive_decode(const reference::HostProblem& hp, std::vector<double>& out, std::vector<double>& lse,
                  std::vector<double>* weighted_abs = nullptr) {
  const DecodeProblem& p = hp.problem;
  out.assign(static_cast<std::size_t>(p.batch) * p.s_q * p.h_q * p.d_v, 0.0);
  if (weighted_abs) weighted_abs->assign(out.size(), 0.0);
  lse.assign(static_cast<std::size_t>(p.batch) * p.h_q * p.s_q, kInf);
  auto val = [&](uint16_t bits) {
    return static_cast<double>(reference::half_bits_to_float(bits, p.kv_dtype));
  };
  for (int b = 0; b < p.batch; ++b) {
    const int n = std::min(hp.seqlens[b], p.max_pages_per_seq * p.page_size);
    for (int i = 0; i < p.s_q; ++i) {
      const int visible = hp.causal ? std::clamp(n - p.s_q + i + 1, 0, n) : n;
      for (int h = 0; h < p.h_q; ++h) {
        if (visible == 0) continue;
        const int g = h / (p.h_q / p.h_kv);
        const uint16_t* q = hp.q + ((static_cast<int64_t>(b) * p.s_q + i) * p.h_q + h) * p.d_qk;
        std::vector<double> s(visible);
        std::vector<const uint16_t*> k(visible);
        for (int t = 0; t < visible; ++t) {
          const int page = hp.block_table[b * p.max_pages_per_seq + t / p.page_size];
          k[t] = hp.kv_cache +
                 ((static_cast<int64_t>(page) * p.page_size + t % p.page_size) * p.h_kv + g) * p.d_qk;
          double dot = 0;
          for (int c = 0; c < p.d_qk; ++c) dot += val(q[c]) * val(k[t][c]);
          s[t] = hp.softmax_scale * dot;
        }
        const double m = *std::max_element(s.begin(), s.end());
        double sum = 0;
        for (double& x : s) sum += (x = std::exp(x - m));
        double* o = out.data() + ((static_cast<int64_t>(b) * p.s_q + i) * p.h_q + h) * p.d_v;
        for (int t = 0; t < visible; ++t)
          for (int c = 0; c < p.d_v; ++c) o[c] += s[t] / sum * val(k[t][c]);
        if (weighted_abs) {
          double* a = weighted_abs->data() + (o - out.data());
          for (int t = 0; t < visible; ++t)
            for (int c = 0; c < p.d_v; ++c) a[c] += s[t] / sum * std::abs(val(k[t][c]));
        }
        lse[(static_cast<int64_t>(b) * p.h_q + h) * p.s_q + i] = m + std::log(sum);
      }
    }
  }
}

void expect_close(const std::vector<double>& a, const std::vector<double>& b, double tol) {
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::isinf(b[i])) {
      EXPECT_EQ(a[i], b[i]) << "at " << i;
    } else {
      ASSERT_NEAR(a[i], b[i], tol * (1 + std::abs(b[i]))) << "at " << i;
    }
  }
}

testing::ProblemSpec small_spec() {
  testing::ProblemSpec spec;
  spec.batch = 1;
  spec.h_q = 4;
  spec.seqlen_fixed = 20;
  return spec;
}

// small_spec() with s_q query tokens over `seqlen` keys and the causal MTP mask.
testing::ProblemSpec causal_spec(int32_t s_q, int32_t seqlen) {
  testing::ProblemSpec spec = small_spec();
  spec.s_q = s_q;
  spec.seqlen_fixed = seqlen;
  spec.causal = true;
  return spec;
}

// Decoded output row [d_v] of (request b, token i, head h).
const double* out_row(const testing::HostData& d, const std::vector<double>& out, int b, int i, int h) {
  const DecodeProblem& p = d.problem;
  return out.data() + ((static_cast<int64_t>(b) * p.s_q + i) * p.h_q + h) * p.d_v;
}

double lse_at(const testing::HostData& d, const std::vector<double>& lse, int b, int i, int h) {
  const DecodeProblem& p = d.problem;
  return lse[(static_cast<int64_t>(b) * p.h_q + h) * p.s_q + i];
}

// Cache row [d_qk] of token t of request b (kv head 0).
const uint16_t* cache_row(const testing::HostData& d, int b, int t) {
  const DecodeProblem& p = d.problem;
  const int page = d.block_table[b * p.max_pages_per_seq + t / p.page_size];
  return d.kv_cache.data() + ((static_cast<int64_t>(page) * p.page_size + t % p.page_size) * p.h_kv) * p.d_qk;
}

// Small odd shapes: 2 KV heads, d 80/64, page 16, an empty request, causal MTP.
testing::ProblemSpec odd_spec() {
  testing::ProblemSpec spec;
  spec.batch = 4;
  spec.s_q = 3;
  spec.h_q = 8;
  spec.h_kv = 2;
  spec.d_qk = 80;
  spec.d_v = 64;
  spec.page_size = 16;
  spec.seqlens = {0, 1, 17, 50};
  spec.causal = true;
  return spec;
}

// reference::decode against naive_decode on the problem of `spec`.
void expect_matches_naive(const testing::ProblemSpec& spec) {
  const auto data = testing::make_problem(spec);
  std::vector<double> out, lse, ref_out, ref_lse;
  reference::decode(data.view(), out, lse);
  naive_decode(data.view(), ref_out, ref_lse);
  expect_close(out, ref_out, 1e-12);
  expect_close(lse, ref_lse, 1e-12);
}

TEST(ReferenceDecode, MatchesNaiveLoopsOnOddShapes) {
  testing::ProblemSpec spec = odd_spec();
  spec.seed = 11;
  expect_matches_naive(spec);
}

TEST(ReferenceDecode, MatchesNaiveLoopsWithManyRows) {
  // 2 · 64 = 128 rows per kv head: several work items share one request.
  testing::ProblemSpec spec;
  spec.batch = 2;
  spec.s_q = 2;
  spec.h_q = 64;
  spec.seqlens = {130, 7};
  spec.seed = 12;
  expect_matches_naive(spec);
}

TEST(ReferenceDecode, SingleKeyOutputIsItsValueRow) {
  auto spec = small_spec();
  spec.seqlen_fixed = 1;
  const auto data = testing::make_problem(spec);
  std::vector<double> out, lse;
  reference::decode(data.view(), out, lse);
  const uint16_t* row = cache_row(data, 0, 0);
  for (int h = 0; h < spec.h_q; ++h) {
    const double* o = out_row(data, out, 0, 0, h);
    for (int c = 0; c < spec.d_v; ++c) ASSERT_EQ(o[c], reference::bf16_to_float(row[c])) << h << "," << c;
    // lse of one key is its logit.
    double dot = 0;
    const uint16_t* q = data.q.data() + static_cast<int64_t>(h) * spec.d_qk;
    for (int c = 0; c < spec.d_qk; ++c)
      dot += double{reference::bf16_to_float(q[c])} * reference::bf16_to_float(row[c]);
    EXPECT_NEAR(lse_at(data, lse, 0, 0, h), spec.softmax_scale * dot, 1e-12);
  }
}

TEST(ReferenceDecode, UniformLogitsGiveMeanOfValues) {
  auto spec = small_spec();
  spec.seqlen_fixed = 77;  // a full page and a tail
  auto data = testing::make_problem(spec);
  std::fill(data.q.begin(), data.q.end(), uint16_t{0});  // every logit 0
  std::vector<double> out, lse;
  reference::decode(data.view(), out, lse);
  std::vector<double> mean(spec.d_v, 0.0);
  for (int t = 0; t < spec.seqlen_fixed; ++t)
    for (int c = 0; c < spec.d_v; ++c) mean[c] += reference::bf16_to_float(cache_row(data, 0, t)[c]);
  for (int h = 0; h < spec.h_q; ++h) {
    const double* o = out_row(data, out, 0, 0, h);
    for (int c = 0; c < spec.d_v; ++c) ASSERT_NEAR(o[c], mean[c] / spec.seqlen_fixed, 1e-14);
    EXPECT_NEAR(lse_at(data, lse, 0, 0, h), std::log(77.0), 1e-14);
  }
}

TEST(ReferenceDecode, CausalMtpFirstTokenSeesNoKey) {
  const auto spec = causal_spec(4, 3);
  const auto data = testing::make_problem(spec);
  std::vector<double> out, lse;
  reference::decode(data.view(), out, lse);
  for (int h = 0; h < spec.h_q; ++h) {
    const double* o0 = out_row(data, out, 0, 0, h);
    for (int c = 0; c < spec.d_v; ++c) ASSERT_EQ(o0[c], 0.0);
    EXPECT_EQ(lse_at(data, lse, 0, 0, h), kInf);
    // Token 1 sees exactly key 0.
    const double* o1 = out_row(data, out, 0, 1, h);
    for (int c = 0; c < spec.d_v; ++c) ASSERT_EQ(o1[c], reference::bf16_to_float(cache_row(data, 0, 0)[c]));
    for (int i = 1; i < spec.s_q; ++i) EXPECT_TRUE(std::isfinite(lse_at(data, lse, 0, i, h)));
  }
}

TEST(ReferenceDecode, CausalLastTokenSeesEveryKey) {
  auto spec = causal_spec(3, 70);
  const auto causal = testing::make_problem(spec);
  spec.causal = false;
  const auto full = testing::make_problem(spec);
  ASSERT_EQ(causal.q, full.q);
  std::vector<double> out_c, lse_c, out_f, lse_f;
  reference::decode(causal.view(), out_c, lse_c);
  reference::decode(full.view(), out_f, lse_f);
  for (int h = 0; h < spec.h_q; ++h) {
    const int last = spec.s_q - 1;
    for (int c = 0; c < spec.d_v; ++c)
      ASSERT_EQ(out_row(causal, out_c, 0, last, h)[c], out_row(full, out_f, 0, last, h)[c]);
    EXPECT_EQ(lse_at(causal, lse_c, 0, last, h), lse_at(full, lse_f, 0, last, h));
    // Earlier tokens see fewer keys, so their results differ.
    EXPECT_NE(lse_at(causal, lse_c, 0, 0, h), lse_at(full, lse_f, 0, 0, h));
  }
}

TEST(ReferenceDecode, EmptyRequestGivesZerosAndInfiniteLse) {
  auto spec = small_spec();
  spec.batch = 3;
  spec.seqlens = {5, 0, 9};
  const auto data = testing::make_problem(spec);
  std::vector<double> out, lse;
  reference::decode(data.view(), out, lse);
  for (int h = 0; h < spec.h_q; ++h) {
    for (int c = 0; c < spec.d_v; ++c) ASSERT_EQ(out_row(data, out, 1, 0, h)[c], 0.0);
    EXPECT_EQ(lse_at(data, lse, 1, 0, h), kInf);
    EXPECT_TRUE(std::isfinite(lse_at(data, lse, 0, 0, h)));
    EXPECT_TRUE(std::isfinite(lse_at(data, lse, 2, 0, h)));
  }
}

TEST(ReferenceDecode, ZeroBatchIsEmpty) {
  testing::ProblemSpec spec;
  spec.batch = 0;
  const auto data = testing::make_problem(spec);
  std::vector<double> out{1.0}, lse{1.0};
  reference::decode(data.view(), out, lse);
  EXPECT_TRUE(out.empty());
  EXPECT_TRUE(lse.empty());
}

TEST(ReferenceDecode, Base2LseIsNaturalTimesLog2e) {
  auto spec = small_spec();
  spec.batch = 2;
  spec.seqlens = {33, 0};
  const auto data = testing::make_problem(spec);
  std::vector<double> out_e, lse_e, out_2, lse_2;
  reference::decode(data.view(), out_e, lse_e, LseBase::kNatural);
  reference::decode(data.view(), out_2, lse_2, LseBase::kBase2);
  EXPECT_EQ(out_e, out_2);
  for (std::size_t i = 0; i < lse_e.size(); ++i) {
    if (std::isinf(lse_e[i])) {
      EXPECT_EQ(lse_2[i], kInf);
    } else {
      EXPECT_NEAR(lse_2[i], lse_e[i] * std::numbers::log2e, 1e-13);
    }
  }
}

TEST(ReferenceDecode, PoisonPastSeqlenNeverLeaks) {
  auto spec = small_spec();
  spec.batch = 2;
  spec.seqlens = {70, 3};  // tail pages: NaN slots share a page with live keys
  const auto data = testing::make_problem(spec);
  std::vector<double> out, lse;
  reference::decode(data.view(), out, lse);
  for (double x : out) ASSERT_TRUE(std::isfinite(x));
  for (double x : lse) ASSERT_TRUE(std::isfinite(x));
}

TEST(ReferenceDecode, SlotsPastSeqlenDoNotAffectResult) {
  auto spec = small_spec();
  spec.seqlen_fixed = 40;
  spec.poison = false;
  auto data = testing::make_problem(spec);
  std::vector<double> out_a, lse_a, out_b, lse_b;
  reference::decode(data.view(), out_a, lse_a);
  const int32_t page = data.block_table[0];
  const int64_t row = static_cast<int64_t>(spec.h_kv) * spec.d_qk;
  std::fill(data.kv_cache.begin() + (page * spec.page_size + 40) * row,
            data.kv_cache.begin() + (page + 1) * spec.page_size * row, uint16_t{0x7F80});  // +Inf
  reference::decode(data.view(), out_b, lse_b);
  EXPECT_EQ(out_a, out_b);
  EXPECT_EQ(lse_a, lse_b);
}

TEST(ReferenceDecode, SeqlenClampedToBlockTableRow) {
  auto spec = small_spec();
  spec.seqlen_fixed = 128;
  spec.extra_table_columns = 0;  // the row holds exactly 2 pages
  auto data = testing::make_problem(spec);
  std::vector<double> out_a, lse_a, out_b, lse_b;
  reference::decode(data.view(), out_a, lse_a);
  data.seqlens[0] = 1000;  // claims more tokens than the row can address
  reference::decode(data.view(), out_b, lse_b);
  EXPECT_EQ(out_a, out_b);
  EXPECT_EQ(lse_a, lse_b);
}

TEST(ReferenceDecode, ThreadCountDoesNotChangeBits) {
  testing::ProblemSpec spec;
  spec.batch = 5;
  spec.s_q = 2;
  spec.h_q = 32;
  spec.seqlens = {1, 100, 0, 64, 250};
  spec.causal = true;
  const auto data = testing::make_problem(spec);
  std::vector<double> out_1, lse_1, out_n, lse_n;
  reference::decode(data.view(), out_1, lse_1, LseBase::kNatural, 1);
  reference::decode(data.view(), out_n, lse_n, LseBase::kNatural, 7);
  EXPECT_EQ(out_1, out_n);
  EXPECT_EQ(lse_1, lse_n);
}

TEST(ReferenceDecode, Fp16InputsMatchNaiveLoops) {
  auto spec = small_spec();
  spec.dtype = DType::kFP16;
  spec.batch = 2;
  spec.seqlens = {65, 12};
  expect_matches_naive(spec);
}

TEST(ReferenceDecode, LargeLogitsStayFinite) {
  auto spec = small_spec();
  spec.input_std = 12.0f;  // logits beyond 709: exp without max subtraction would overflow in fp64
  spec.seqlen_fixed = 100;
  const auto data = testing::make_problem(spec);
  std::vector<double> out, lse;
  reference::decode(data.view(), out, lse);
  for (double x : out) ASSERT_TRUE(std::isfinite(x));
  for (double x : lse) ASSERT_TRUE(std::isfinite(x));
  EXPECT_GT(*std::max_element(lse.begin(), lse.end()), 709.0);
}

// weighted_abs = Σ p·|v|: what testing::compare scales the kernel's rounding error by.
TEST(ReferenceDecode, WeightedAbsMatchesNaiveAndBoundsOut) {
  testing::ProblemSpec spec = odd_spec();
  spec.input_std = 1.5f;
  spec.seed = 13;
  const auto data = testing::make_problem(spec);
  std::vector<double> out, lse, weighted_abs, plain_out, plain_lse, naive_out, naive_lse, naive_abs;
  reference::decode(data.view(), out, lse, LseBase::kNatural, 3, &weighted_abs);
  reference::decode(data.view(), plain_out, plain_lse);
  naive_decode(data.view(), naive_out, naive_lse, &naive_abs);
  // Asking for it changes nothing else.
  EXPECT_EQ(out, plain_out);
  EXPECT_EQ(lse, plain_lse);
  expect_close(weighted_abs, naive_abs, 1e-12);
  ASSERT_EQ(weighted_abs.size(), out.size());
  int strictly_larger = 0;
  for (std::size_t i = 0; i < out.size(); ++i) {
    ASSERT_GE(weighted_abs[i], std::abs(out[i]) * (1 - 1e-14)) << "at " << i;
    strictly_larger += weighted_abs[i] > std::abs(out[i]) * (1 + 1e-6);
  }
  EXPECT_GT(strictly_larger, 0);  // rows with several keys and mixed signs cancel
  // Rows that see no key (request 0, and causal tokens of request 1 before its key): 0.
  for (int i = 0; i < spec.s_q; ++i)
    for (int h = 0; h < spec.h_q; ++h)
      for (int c = 0; c < spec.d_v; ++c) ASSERT_EQ(out_row(data, weighted_abs, 0, i, h)[c], 0.0);
}

TEST(ReferenceDecode, WeightedAbsOfOneKeyIsAbsOut) {
  auto spec = small_spec();
  spec.seqlen_fixed = 1;
  const auto data = testing::make_problem(spec);
  std::vector<double> out, lse, weighted_abs;
  reference::decode(data.view(), out, lse, LseBase::kBase2, 0, &weighted_abs);
  ASSERT_EQ(weighted_abs.size(), out.size());
  for (std::size_t i = 0; i < out.size(); ++i) ASSERT_EQ(weighted_abs[i], std::abs(out[i])) << "at " << i;
}

TEST(ReferenceDecode, OutOfRangePageIdThrows) {
  auto spec = small_spec();
  auto data = testing::make_problem(spec);
  data.block_table[0] = kPaddingPageId;
  std::vector<double> out, lse;
  EXPECT_THROW(reference::decode(data.view(), out, lse), std::out_of_range);
}

TEST(ReferenceDecode, InvalidShapeThrows) {
  auto spec = small_spec();
  auto data = testing::make_problem(spec);
  data.problem.h_kv = 3;  // 4 heads do not split over 3 kv heads
  std::vector<double> out, lse;
  EXPECT_THROW(reference::decode(data.view(), out, lse), std::invalid_argument);
}

}  // namespace
}  // namespace etap
