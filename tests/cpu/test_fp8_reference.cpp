// FP8 KV caches on the CPU: the e4m3 conversions and the reference decode over both FP8 formats.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <etap/reference.hpp>
#include <limits>
#include <random>
#include <stdexcept>
#include <vector>

#include "testing/problem.hpp"

namespace etap {
namespace {

using reference::float_to_fp8_e4m3;
using reference::fp8_e4m3_to_float;
using Token = Fp8DeepSeekV32Token;

constexpr double kInf = std::numeric_limits<double>::infinity();

bool is_nan_code(uint32_t code) {
  return (code & 0x7F) == 0x7F;
}

// The value of an e4m3 pattern from its sign, exponent and mantissa fields, in double arithmetic.
double e4m3_from_fields(uint32_t code) {
  const double sign = (code & 0x80) ? -1.0 : 1.0;
  const int exponent = static_cast<int>((code >> 3) & 0xF);
  const double mantissa = static_cast<double>(code & 0x7) / 8.0;
  return sign *
         (exponent == 0 ? mantissa * std::pow(2.0, -6) : (1.0 + mantissa) * std::pow(2.0, exponent - 7));
}

TEST(Fp8Conversions, EveryPatternMatchesItsFields) {
  int nan = 0;
  for (uint32_t code = 0; code < 256; ++code) {
    const float value = fp8_e4m3_to_float(static_cast<uint8_t>(code));
    if (is_nan_code(code)) {
      EXPECT_TRUE(std::isnan(value)) << code;
      ++nan;
      continue;
    }
    EXPECT_EQ(static_cast<double>(value), e4m3_from_fields(code)) << code;
    EXPECT_EQ(std::signbit(value), (code & 0x80) != 0) << code;  // -0 included
  }
  EXPECT_EQ(nan, 2);  // e4m3fn: no infinities, 0x7F and 0xFF only
}

TEST(Fp8Conversions, KnownValues) {
  EXPECT_EQ(fp8_e4m3_to_float(0x38), 1.0f);
  EXPECT_EQ(fp8_e4m3_to_float(0x7E), 448.0f);
  EXPECT_EQ(fp8_e4m3_to_float(0xFE), -448.0f);
  EXPECT_EQ(fp8_e4m3_to_float(0x01), std::ldexp(1.0f, -9));  // smallest subnormal
  EXPECT_EQ(fp8_e4m3_to_float(0x07), 7 * std::ldexp(1.0f, -9));
  EXPECT_EQ(fp8_e4m3_to_float(0x08), std::ldexp(1.0f, -6));  // smallest normal
  EXPECT_EQ(fp8_e4m3_to_float(0x78), 256.0f);
}

TEST(Fp8Conversions, EveryFiniteValueRoundTrips) {
  for (uint32_t code = 0; code < 256; ++code) {
    if (is_nan_code(code)) continue;
    EXPECT_EQ(float_to_fp8_e4m3(fp8_e4m3_to_float(static_cast<uint8_t>(code))), code) << code;
  }
}

TEST(Fp8Conversions, TiesRoundToEven) {
  for (uint32_t low = 0; low < 0x7E; ++low) {  // consecutive non-negative finite codes
    const float a = fp8_e4m3_to_float(static_cast<uint8_t>(low));
    const float b = fp8_e4m3_to_float(static_cast<uint8_t>(low + 1));
    const float mid = (a + b) / 2;  // at most 5 significant bits: exact
    ASSERT_EQ(static_cast<double>(mid), (static_cast<double>(a) + b) / 2);
    const uint32_t even = (low & 1) ? low + 1 : low;
    EXPECT_EQ(float_to_fp8_e4m3(mid), even) << low;
    EXPECT_EQ(float_to_fp8_e4m3(-mid), 0x80 | even) << low;
    EXPECT_EQ(float_to_fp8_e4m3(std::nextafter(mid, 0.f)), low) << low;
    EXPECT_EQ(float_to_fp8_e4m3(std::nextafter(mid, 1000.f)), low + 1) << low;
  }
}

TEST(Fp8Conversions, SaturatesToFiniteAndKeepsNaN) {
  const float inf = std::numeric_limits<float>::infinity();
  for (const float big : {448.f, 449.f, 463.9f, 464.f, 480.f, 1e6f, std::numeric_limits<float>::max(), inf}) {
    EXPECT_EQ(float_to_fp8_e4m3(big), 0x7E) << big;
    EXPECT_EQ(float_to_fp8_e4m3(-big), 0xFE) << big;
  }
  EXPECT_EQ(float_to_fp8_e4m3(std::numeric_limits<float>::quiet_NaN()), 0x7F);
  EXPECT_EQ(float_to_fp8_e4m3(-std::numeric_limits<float>::quiet_NaN()), 0xFF);
  EXPECT_EQ(float_to_fp8_e4m3(std::ldexp(1.f, -10)), 0x00);  // tie between 0 and 2^-9: even
  EXPECT_EQ(float_to_fp8_e4m3(std::nextafter(std::ldexp(1.f, -10), 1.f)), 0x01);
  EXPECT_EQ(float_to_fp8_e4m3(-std::ldexp(1.f, -12)), 0x80);  // underflow keeps the sign
  EXPECT_EQ(float_to_fp8_e4m3(std::numeric_limits<float>::denorm_min()), 0x00);
}

// Against an exhaustive search: the nearest finite e4m3 value, ties to the even code, ±448 beyond.
TEST(Fp8Conversions, MatchesNearestBySearch) {
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> log_magnitude(-14, 9.5);
  for (int i = 0; i < 20000; ++i) {
    const float x = static_cast<float>((rng() & 1 ? -1 : 1) * std::exp2(log_magnitude(rng)));
    uint32_t best = 0;
    double best_error = kInf;
    for (uint32_t code = 0; code < 256; ++code) {
      if (is_nan_code(code) || (code & 0x80) != (std::signbit(x) ? 0x80u : 0u)) continue;
      const double error = std::abs(static_cast<double>(fp8_e4m3_to_float(static_cast<uint8_t>(code))) - x);
      if (error < best_error || (error == best_error && (code & 1) == 0)) {
        best = code;
        best_error = error;
      }
    }
    ASSERT_EQ(float_to_fp8_e4m3(x), best) << x;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Reference decode over FP8 caches

// The same problem with a dense bf16 cache holding the exact dequantised values (poison stays NaN).
testing::HostData dequantised(const testing::HostData& fp8) {
  testing::HostData dense = fp8;
  dense.kv_bytes.clear();
  dense.problem.kv_format = KvFormat::kDense;
  dense.problem.kv_dtype = DType::kBF16;
  const DecodeProblem& p = fp8.problem;
  const int64_t rows = int64_t{p.num_pages} * p.page_size * p.h_kv;
  dense.kv_cache.resize(rows * p.d_qk);
  for (int64_t r = 0; r < rows; ++r)
    for (int32_t c = 0; c < p.d_qk; ++c) {
      double value = 0;
      if (p.kv_format == KvFormat::kFp8PerTensor) {
        value = double{fp8_e4m3_to_float(fp8.kv_bytes[r * p.d_qk + c])} * fp8.descale_k;
      } else {
        const uint8_t* token = fp8.kv_bytes.data() + r * Token::kBytes;
        if (c < Token::kLatent) {
          float scale;
          std::memcpy(&scale, token + Token::kScaleOffset + 4 * (c / Token::kScaleGroup), sizeof(scale));
          value = double{fp8_e4m3_to_float(token[c])} * scale;
        } else {
          uint16_t bits;
          std::memcpy(&bits, token + Token::kRopeOffset + 2 * (c - Token::kLatent), sizeof(bits));
          value = reference::bf16_to_float(bits);
        }
      }
      const uint16_t bits = reference::float_to_bf16(static_cast<float>(value));
      if (!std::isnan(value)) {
        EXPECT_EQ(double{reference::bf16_to_float(bits)}, value) << "row " << r << " col " << c;
      }
      dense.kv_cache[r * p.d_qk + c] = bits;
    }
  return dense;
}

struct Fp8Case {
  const char* name;
  KvFormat format;
  DType q_dtype;
  int32_t s_q;
  bool causal;
  std::vector<int32_t> seqlens;
};

class Fp8Reference : public ::testing::TestWithParam<Fp8Case> {};

TEST_P(Fp8Reference, EqualsBf16ReferenceOverTheDequantisedCache) {
  const Fp8Case& c = GetParam();
  testing::ProblemSpec spec;
  spec.batch = static_cast<int32_t>(c.seqlens.size());
  spec.seqlens = c.seqlens;
  spec.s_q = c.s_q;
  spec.h_q = 8;
  spec.causal = c.causal;
  spec.dtype = c.q_dtype;
  spec.kv_format = c.format;
  spec.seed = 11;
  const testing::HostData fp8 = testing::make_problem(spec);
  const testing::HostData dense = dequantised(fp8);

  std::vector<double> out_a, lse_a, abs_a, out_b, lse_b, abs_b;
  reference::decode(fp8.view(), out_a, lse_a, LseBase::kNatural, 2, &abs_a);
  reference::decode(dense.view(), out_b, lse_b, LseBase::kNatural, 2, &abs_b);
  for (double x : out_a) ASSERT_TRUE(std::isfinite(x));  // poison past each seqlen is never read
  EXPECT_EQ(out_a, out_b);                               // bit-exact: the same fp64 inputs
  EXPECT_EQ(lse_a, lse_b);
  EXPECT_EQ(abs_a, abs_b);
  for (std::size_t i = 0; i < out_a.size(); ++i) ASSERT_LE(std::abs(out_a[i]), abs_a[i] + 1e-15);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, Fp8Reference,
    ::testing::Values(
        Fp8Case{"PerTensor", KvFormat::kFp8PerTensor, DType::kBF16, 1, false, {70, 3, 128}},
        Fp8Case{"PerTensorFp16CausalMtp", KvFormat::kFp8PerTensor, DType::kFP16, 2, true, {65, 1}},
        Fp8Case{"PerTensorEmpty", KvFormat::kFp8PerTensor, DType::kBF16, 1, false, {0, 40, 0}},
        Fp8Case{"DeepSeekV32", KvFormat::kFp8DeepSeekV32, DType::kBF16, 1, false, {70, 3, 128}},
        Fp8Case{"DeepSeekV32CausalMtp", KvFormat::kFp8DeepSeekV32, DType::kBF16, 3, true, {2, 90}},
        Fp8Case{"DeepSeekV32Fp16Empty", KvFormat::kFp8DeepSeekV32, DType::kFP16, 1, false, {0, 17}}),
    [](const ::testing::TestParamInfo<Fp8Case>& info) { return std::string(info.param.name); });

TEST(Fp8ReferenceDecode, EmptyRequestGivesZerosAndInfiniteLse) {
  testing::ProblemSpec spec;
  spec.seqlens = {0};
  spec.kv_format = KvFormat::kFp8DeepSeekV32;
  const auto data = testing::make_problem(spec);
  std::vector<double> out, lse;
  reference::decode(data.view(), out, lse);
  for (double x : out) EXPECT_EQ(x, 0.0);
  for (double x : lse) EXPECT_EQ(x, kInf);
}

// A hand-built 656-byte token read by a single-key decode: out is the dequantised latent, the lse is the
// logit, which with a query on the RoPE channels alone reads only the bf16 RoPE bytes.
TEST(Fp8ReferenceDecode, ReadsTheDeepSeekV32TokenByteByByte) {
  DecodeProblem p{.batch = 1,
                  .h_q = 1,
                  .page_size = 1,
                  .num_pages = 1,
                  .max_pages_per_seq = 1,
                  .kv_dtype = DType::kFP8E4M3,
                  .kv_format = KvFormat::kFp8DeepSeekV32};
  std::vector<uint8_t> token(Token::kBytes);
  for (int32_t c = 0; c < Token::kLatent; ++c) token[c] = static_cast<uint8_t>((c * 37) % 0x7F);
  const float scales[Token::kScales] = {0.5f, 2.f, 0.25f, 8.f};
  std::memcpy(token.data() + Token::kScaleOffset, scales, sizeof(scales));
  for (int32_t j = 0; j < Token::kRope; ++j) {
    const uint16_t bits = reference::float_to_bf16(static_cast<float>(j) / 8);
    std::memcpy(token.data() + Token::kRopeOffset + 2 * j, &bits, sizeof(bits));
  }
  std::vector<uint16_t> q(576, 0);
  for (int32_t j = 0; j < Token::kRope; ++j) q[Token::kLatent + j] = reference::float_to_bf16(1.f);
  const int32_t block_table = 0, seqlen = 1;
  reference::HostProblem hp{.problem = p,
                            .q = q.data(),
                            .kv_bytes = token.data(),
                            .block_table = &block_table,
                            .seqlens = &seqlen,
                            .softmax_scale = 0.5};
  std::vector<double> out, lse;
  reference::decode(hp, out, lse);
  for (int32_t c = 0; c < Token::kLatent; ++c)
    EXPECT_EQ(out[c], double{fp8_e4m3_to_float(token[c])} * scales[c / Token::kScaleGroup]) << c;
  EXPECT_EQ(lse[0], 0.5 * (63.0 * 64 / 2) / 8);  // 0.5 · Σ_j j/8
}

TEST(Fp8ReferenceDecode, PerTensorSingleKeyIsScaledValueRow) {
  testing::ProblemSpec spec;
  spec.seqlens = {1};
  spec.h_q = 2;
  spec.kv_format = KvFormat::kFp8PerTensor;
  const auto data = testing::make_problem(spec);
  std::vector<double> out, lse;
  reference::decode(data.view(), out, lse);
  const uint8_t* row = data.kv_bytes.data() + int64_t{data.block_table[0]} * 64 * 576;
  for (int32_t h = 0; h < 2; ++h)
    for (int32_t c = 0; c < 512; ++c)
      EXPECT_EQ(out[h * 512 + c], double{fp8_e4m3_to_float(row[c])} * data.descale_k) << c;
}

TEST(Fp8ReferenceDecode, BytesPastSeqlenDoNotAffectResult) {
  for (const KvFormat format : {KvFormat::kFp8PerTensor, KvFormat::kFp8DeepSeekV32}) {
    testing::ProblemSpec spec;
    spec.seqlens = {40};
    spec.kv_format = format;
    auto data = testing::make_problem(spec);
    std::vector<double> out_a, lse_a, out_b, lse_b;
    reference::decode(data.view(), out_a, lse_a);
    const int64_t row = format == KvFormat::kFp8PerTensor ? 576 : Token::kBytes;
    const int64_t page = data.block_table[0];
    std::fill(data.kv_bytes.begin() + (page * 64 + 40) * row, data.kv_bytes.begin() + (page + 1) * 64 * row,
              uint8_t{0x00});
    reference::decode(data.view(), out_b, lse_b);
    EXPECT_EQ(out_a, out_b);
    EXPECT_EQ(lse_a, lse_b);
  }
}

TEST(Fp8ReferenceDecode, InvalidFp8ProblemsThrow) {
  testing::ProblemSpec spec;
  spec.seqlens = {10};
  spec.kv_format = KvFormat::kFp8PerTensor;
  const auto data = testing::make_problem(spec);
  std::vector<double> out, lse;
  for (const float bad : {0.f, -1.f, std::numeric_limits<float>::quiet_NaN()}) {
    auto hp = data.view();
    hp.descale_k = bad;
    EXPECT_THROW(reference::decode(hp, out, lse), std::invalid_argument) << bad;
  }
  auto hp = data.view();
  hp.kv_bytes = nullptr;
  EXPECT_THROW(reference::decode(hp, out, lse), std::invalid_argument);
  hp = data.view();
  hp.problem.kv_dtype = DType::kBF16;
  EXPECT_THROW(reference::decode(hp, out, lse), std::invalid_argument);
  hp = data.view();
  hp.problem.kv_format = KvFormat::kFp8DeepSeekV32;
  hp.problem.d_v = 256;
  EXPECT_THROW(reference::decode(hp, out, lse), std::invalid_argument);
}

}  // namespace
}  // namespace etap
