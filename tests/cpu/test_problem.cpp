// Synthetic problem generator and the kernel-vs-reference comparison.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <etap/reference.hpp>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <vector>

#include "cpu/test_util.hpp"
#include "testing/problem.hpp"

namespace etap {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

testing::ProblemSpec varied_spec() {
  testing::ProblemSpec spec;
  spec.batch = 4;
  spec.h_q = 2;
  spec.seqlens = {1, 64, 0, 200};
  spec.spare_pages = 3;
  spec.extra_table_columns = 2;
  spec.seed = 5;
  return spec;
}

bool is_nan_bits(uint16_t bits, DType dtype) {
  return std::isnan(reference::half_bits_to_float(bits, dtype));
}

TEST(MakeProblem, ShapesFollowTheSpec) {
  const auto spec = varied_spec();
  const auto d = testing::make_problem(spec);
  const DecodeProblem& p = d.problem;
  EXPECT_EQ(p.batch, 4);
  EXPECT_EQ(p.h_q, 2);
  EXPECT_EQ(p.max_pages_per_seq, 4 + 2);      // ceil(200 / 64) + extra columns
  EXPECT_EQ(p.num_pages, 1 + 1 + 0 + 4 + 3);  // pages per request + spare
  EXPECT_EQ(p.q_dtype, DType::kBF16);
  EXPECT_EQ(p.out_dtype, DType::kBF16);
  EXPECT_EQ(d.q.size(), 4u * 1 * 2 * 576);
  EXPECT_EQ(d.kv_cache.size(), static_cast<std::size_t>(p.num_pages) * 64 * 576);
  EXPECT_EQ(d.block_table.size(), 4u * p.max_pages_per_seq);
  EXPECT_EQ(d.seqlens, spec.seqlens);
  EXPECT_EQ(d.softmax_scale, spec.softmax_scale);
}

TEST(MakeProblem, EveryPageUsedAtMostOnce) {
  const auto d = testing::make_problem(varied_spec());
  const DecodeProblem& p = d.problem;
  std::vector<int> uses(p.num_pages, 0);
  int used = 0;
  for (int32_t id : d.block_table) {
    if (id == kPaddingPageId) continue;
    ASSERT_GE(id, 0);
    ASSERT_LT(id, p.num_pages);
    ++uses[id];
    ++used;
  }
  EXPECT_EQ(used, p.num_pages - 3);
  for (int u : uses) EXPECT_LE(u, 1);
}

TEST(MakeProblem, ShuffledPagesAreAPermutation) {
  auto spec = varied_spec();
  spec.spare_pages = 0;
  spec.batch = 1;
  spec.seqlens = {64 * 40};
  const auto d = testing::make_problem(spec);
  std::vector<int32_t> ids(d.block_table.begin(), d.block_table.begin() + 40);
  std::vector<int32_t> sorted = ids;
  std::sort(sorted.begin(), sorted.end());
  std::vector<int32_t> expected(40);
  std::iota(expected.begin(), expected.end(), 0);
  EXPECT_EQ(sorted, expected);
  EXPECT_NE(ids, expected);  // 1 in 40! chance of a false failure
}

TEST(MakeProblem, UnshuffledPagesAreInOrder) {
  auto spec = varied_spec();
  spec.shuffle_pages = false;
  const auto d = testing::make_problem(spec);
  const int32_t cols = d.problem.max_pages_per_seq;
  EXPECT_EQ(d.block_table[0 * cols], 0);
  EXPECT_EQ(d.block_table[1 * cols], 1);
  EXPECT_EQ(d.block_table[3 * cols], 2);
  EXPECT_EQ(d.block_table[3 * cols + 3], 5);
}

TEST(MakeProblem, PaddingIdsPastEachRequestsPages) {
  const auto spec = varied_spec();
  const auto d = testing::make_problem(spec);
  const int32_t cols = d.problem.max_pages_per_seq;
  for (int b = 0; b < spec.batch; ++b) {
    const int pages = (spec.seqlens[b] + 63) / 64;
    for (int j = 0; j < cols; ++j)
      EXPECT_EQ(d.block_table[b * cols + j] == kPaddingPageId, j >= pages) << b << "," << j;
  }
}

TEST(MakeProblem, PoisonFillsExactlyTheUnownedSlots) {
  const auto spec = varied_spec();
  const auto d = testing::make_problem(spec);
  const DecodeProblem& p = d.problem;
  std::vector<char> owned(static_cast<std::size_t>(p.num_pages) * p.page_size, 0);
  for (int b = 0; b < p.batch; ++b)
    for (int t = 0; t < d.seqlens[b]; ++t)
      owned[d.block_table[b * p.max_pages_per_seq + t / p.page_size] * p.page_size + t % p.page_size] = 1;
  for (std::size_t slot = 0; slot < owned.size(); ++slot)
    for (int c = 0; c < p.d_qk; c += 97)
      ASSERT_EQ(is_nan_bits(d.kv_cache[slot * p.d_qk + c], DType::kBF16), !owned[slot]) << slot << "," << c;
  for (uint16_t bits : d.q) ASSERT_FALSE(is_nan_bits(bits, DType::kBF16));
}

TEST(MakeProblem, Fp16PoisonIsFp16NaN) {
  auto spec = varied_spec();
  spec.dtype = DType::kFP16;
  const auto d = testing::make_problem(spec);
  EXPECT_EQ(d.problem.q_dtype, DType::kFP16);
  EXPECT_EQ(d.problem.kv_dtype, DType::kFP16);
  const auto nan_slots = std::count(d.kv_cache.begin(), d.kv_cache.end(), uint16_t{0x7E00});
  EXPECT_GT(nan_slots, 0);
  EXPECT_EQ(std::count(d.kv_cache.begin(), d.kv_cache.end(), uint16_t{0x7FC0}), 0);
}

TEST(MakeProblem, WithoutPoisonEverythingIsFinite) {
  auto spec = varied_spec();
  spec.poison = false;
  const auto d = testing::make_problem(spec);
  for (uint16_t bits : d.kv_cache) ASSERT_FALSE(is_nan_bits(bits, DType::kBF16));
}

// FP8 caches: a scale with at most 4 significant bits keeps e4m3 · scale exact in bf16.
bool has_4_significant_bits(float scale) {
  int exponent = 0;
  const double sixteenths = std::frexp(double{scale}, &exponent) * 16;
  return scale > 0 && std::isfinite(scale) && sixteenths == std::floor(sixteenths);
}

// The owned flag of every [token] slot of the cache (h_kv = 1).
std::vector<char> owned_slots(const testing::HostData& d) {
  const DecodeProblem& p = d.problem;
  std::vector<char> owned(static_cast<std::size_t>(p.num_pages) * p.page_size, 0);
  for (int b = 0; b < p.batch; ++b)
    for (int t = 0; t < d.seqlens[b]; ++t)
      owned[d.block_table[b * p.max_pages_per_seq + t / p.page_size] * p.page_size + t % p.page_size] = 1;
  return owned;
}

TEST(MakeFp8Problem, ShapesAndSizes) {
  for (const KvFormat format : {KvFormat::kFp8PerTensor, KvFormat::kFp8DeepSeekV32}) {
    auto spec = varied_spec();
    spec.kv_format = format;
    spec.dtype = DType::kFP16;
    const auto d = testing::make_problem(spec);
    const DecodeProblem& p = d.problem;
    EXPECT_EQ(p.kv_format, format);
    EXPECT_EQ(p.kv_dtype, DType::kFP8E4M3);
    EXPECT_EQ(p.q_dtype, DType::kFP16);
    EXPECT_EQ(p.out_dtype, DType::kFP16);
    const int64_t row = format == KvFormat::kFp8PerTensor ? 576 : 656;
    EXPECT_EQ(d.kv_bytes.size(), static_cast<std::size_t>(p.num_pages) * p.page_size * row);
    EXPECT_TRUE(d.kv_cache.empty());
    EXPECT_TRUE(has_4_significant_bits(d.descale_k)) << d.descale_k;
    const auto view = d.view();
    EXPECT_EQ(view.kv_bytes, d.kv_bytes.data());
    EXPECT_EQ(view.descale_k, d.descale_k);
    for (int b = 0; b < p.batch; ++b) {  // padding ids past each request's pages, as for bf16
      const int pages = (d.seqlens[b] + p.page_size - 1) / p.page_size;
      for (int j = pages; j < p.max_pages_per_seq; ++j)
        EXPECT_EQ(d.block_table[b * p.max_pages_per_seq + j], kPaddingPageId);
    }
  }
}

TEST(MakeFp8Problem, PerTensorPoisonIsE4m3NaNInExactlyTheUnownedSlots) {
  auto spec = varied_spec();
  spec.kv_format = KvFormat::kFp8PerTensor;
  const auto d = testing::make_problem(spec);
  const std::vector<char> owned = owned_slots(d);
  for (std::size_t slot = 0; slot < owned.size(); ++slot)
    for (int c = 0; c < 576; ++c) {
      const uint8_t byte = d.kv_bytes[slot * 576 + c];
      if (owned[slot])
        ASSERT_TRUE(std::isfinite(reference::fp8_e4m3_to_float(byte))) << slot << "," << c;
      else
        ASSERT_EQ(byte, 0x7F) << slot << "," << c;
    }
}

TEST(MakeFp8Problem, DeepSeekV32PoisonIsNaNInEveryFieldOfTheUnownedSlots) {
  using Token = Fp8DeepSeekV32Token;
  auto spec = varied_spec();
  spec.kv_format = KvFormat::kFp8DeepSeekV32;
  const auto d = testing::make_problem(spec);
  const std::vector<char> owned = owned_slots(d);
  for (std::size_t slot = 0; slot < owned.size(); ++slot) {
    const uint8_t* token = d.kv_bytes.data() + slot * Token::kBytes;
    float scales[Token::kScales];
    std::memcpy(scales, token + Token::kScaleOffset, sizeof(scales));
    for (int c = 0; c < Token::kLatent; ++c)
      ASSERT_EQ(std::isnan(reference::fp8_e4m3_to_float(token[c])), !owned[slot]) << slot << "," << c;
    for (const float scale : scales) {
      if (owned[slot])
        ASSERT_TRUE(has_4_significant_bits(scale)) << slot << " scale " << scale;
      else
        ASSERT_TRUE(std::isnan(scale)) << slot;
    }
    for (int j = 0; j < Token::kRope; ++j) {
      uint16_t bits;
      std::memcpy(&bits, token + Token::kRopeOffset + 2 * j, sizeof(bits));
      ASSERT_EQ(is_nan_bits(bits, DType::kBF16), !owned[slot]) << slot << "," << j;
    }
  }
}

// Quantised values keep the requested spread; each DeepSeek-V3.2 group uses the e4m3 range (amax near 448).
TEST(MakeFp8Problem, DequantisedValuesHaveTheRequestedSpread) {
  using Token = Fp8DeepSeekV32Token;
  for (const KvFormat format : {KvFormat::kFp8PerTensor, KvFormat::kFp8DeepSeekV32}) {
    testing::ProblemSpec spec;
    spec.seqlens = {256};
    spec.spare_pages = 0;
    spec.kv_format = format;
    const auto d = testing::make_problem(spec);
    const int64_t rows = 256, row_bytes = format == KvFormat::kFp8PerTensor ? 576 : Token::kBytes;
    double sum_sq = 0;
    int64_t count = 0;
    for (int64_t r = 0; r < rows; ++r) {
      const uint8_t* row = d.kv_bytes.data() + r * row_bytes;
      float scales[Token::kScales] = {d.descale_k, d.descale_k, d.descale_k, d.descale_k};
      if (format == KvFormat::kFp8DeepSeekV32) std::memcpy(scales, row + Token::kScaleOffset, sizeof(scales));
      for (int g = 0; g < Token::kScales; ++g) {
        float amax = 0;
        for (int c = g * 128; c < (g + 1) * 128; ++c) {
          const double v = double{reference::fp8_e4m3_to_float(row[c])} * scales[g];
          sum_sq += v * v;
          ++count;
          amax = std::max(amax, std::abs(reference::fp8_e4m3_to_float(row[c])));
        }
        if (format == KvFormat::kFp8DeepSeekV32) {
          EXPECT_GE(amax, 224.f) << r << "," << g;
        }
      }
    }
    EXPECT_NEAR(std::sqrt(sum_sq / count), spec.input_std, 0.05 * spec.input_std) << to_string(format);
  }
}

TEST(MakeFp8Problem, SameSeedSameDataOtherSeedOtherData) {
  auto spec = varied_spec();
  spec.kv_format = KvFormat::kFp8DeepSeekV32;
  const auto a = testing::make_problem(spec);
  const auto b = testing::make_problem(spec);
  EXPECT_EQ(a.kv_bytes, b.kv_bytes);
  spec.seed += 1;
  EXPECT_NE(testing::make_problem(spec).kv_bytes, a.kv_bytes);
}

TEST(MakeFp8Problem, DeepSeekV32NeedsTheMlaHeadDims) {
  auto spec = varied_spec();
  spec.kv_format = KvFormat::kFp8DeepSeekV32;
  spec.d_qk = 512;
  EXPECT_THROW(testing::problem_shape(spec), std::invalid_argument);
  spec.d_qk = 576;
  spec.kv_format = static_cast<KvFormat>(9);
  EXPECT_THROW(testing::problem_shape(spec), std::invalid_argument);
}

TEST(MakeProblem, InputsHaveTheRequestedSpreadAndNoZeros) {
  auto spec = varied_spec();
  spec.input_std = 0.5f;
  const auto d = testing::make_problem(spec);
  double sum_sq = 0;
  int64_t zeros = 0;
  for (uint16_t bits : d.q) {
    const double x = reference::bf16_to_float(bits);
    sum_sq += x * x;
    zeros += x == 0.0;
  }
  EXPECT_NEAR(std::sqrt(sum_sq / d.q.size()), 0.5, 0.03);
  EXPECT_LT(zeros, 5);
}

TEST(MakeProblem, SameSeedSameData) {
  const auto a = testing::make_problem(varied_spec());
  const auto b = testing::make_problem(varied_spec());
  EXPECT_EQ(a.q, b.q);
  EXPECT_EQ(a.kv_cache, b.kv_cache);
  EXPECT_EQ(a.block_table, b.block_table);
  auto spec = varied_spec();
  spec.seed = 6;
  const auto c = testing::make_problem(spec);
  EXPECT_NE(a.q, c.q);
}

TEST(MakeProblem, FixedSeqlenAppliesToEveryRequest) {
  testing::ProblemSpec spec;
  spec.batch = 3;
  spec.seqlen_fixed = 65;
  const auto d = testing::make_problem(spec);
  EXPECT_EQ(d.seqlens, (std::vector<int32_t>{65, 65, 65}));
  EXPECT_EQ(d.problem.num_pages, 3 * 2 + 1);
}

TEST(MakeProblem, AllEmptyRequestsHaveOnlyPadding) {
  testing::ProblemSpec spec;
  spec.batch = 2;
  spec.seqlen_fixed = 0;
  const auto d = testing::make_problem(spec);
  EXPECT_EQ(d.problem.max_pages_per_seq, 1);
  EXPECT_EQ(d.problem.num_pages, 1);
  for (int32_t id : d.block_table) EXPECT_EQ(id, kPaddingPageId);
}

TEST(MakeProblem, InvalidSpecsThrow) {
  auto spec = varied_spec();
  spec.seqlens = {1, 2};  // batch 4
  EXPECT_THROW(testing::make_problem(spec), std::invalid_argument);
  spec = varied_spec();
  spec.h_kv = 3;
  EXPECT_THROW(testing::make_problem(spec), std::invalid_argument);
  spec = varied_spec();
  spec.dtype = DType::kFP8E4M3;
  EXPECT_THROW(testing::make_problem(spec), std::invalid_argument);
  spec = varied_spec();
  spec.seqlens[0] = -1;
  EXPECT_THROW(testing::make_problem(spec), std::invalid_argument);
}

// The CLI accepts b up to 65536 and s_k up to 16M tokens; problems whose page count does not fit
// DecodeProblem::num_pages (int32) must be refused with a message, not overflow.
TEST(MakeProblem, RejectsMorePagesThanNumPagesHolds) {
  testing::ProblemSpec spec;
  spec.seqlen_fixed = 16 << 20;  // 262144 pages per request
  for (int32_t batch : {8192, 16384}) {
    spec.batch = batch;
    try {
      testing::make_problem(spec);
      ADD_FAILURE() << "batch " << batch << " x 16M tokens was accepted";
    } catch (const std::invalid_argument& e) {
      EXPECT_TRUE(::etap::test::Contains(e.what(), "num_pages is int32")) << "batch " << batch;
    }
  }
}

TEST(MakeProblem, RejectsWhatHostMemoryCannotHold) {
  testing::ProblemSpec spec;
  spec.batch = 1024;
  spec.seqlen_fixed = 16 << 20;  // 2^28 pages of 72 KiB: 19.8 TB of KV cache
  try {
    testing::make_problem(spec);
    ADD_FAILURE() << "a 19.8 TB KV cache was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_TRUE(::etap::test::Contains(e.what(), "of host memory"));
  }
}

TEST(MakeProblem, ViewPointsIntoTheData) {
  const auto d = testing::make_problem(varied_spec());
  const reference::HostProblem v = d.view();
  EXPECT_EQ(v.q, d.q.data());
  EXPECT_EQ(v.kv_cache, d.kv_cache.data());
  EXPECT_EQ(v.block_table, d.block_table.data());
  EXPECT_EQ(v.seqlens, d.seqlens.data());
  EXPECT_EQ(v.problem.num_pages, d.problem.num_pages);
  EXPECT_EQ(v.softmax_scale, d.softmax_scale);
  EXPECT_EQ(v.causal, d.causal);
}

TEST(VarlenSeqlens, AtLeastOneAndDeterministic) {
  const auto a = testing::varlen_seqlens(1000, 64, 3);
  const auto b = testing::varlen_seqlens(1000, 64, 3);
  const auto c = testing::varlen_seqlens(1000, 64, 4);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  ASSERT_EQ(a.size(), 1000u);
  for (int32_t s : a) EXPECT_GE(s, 1);
  EXPECT_GT(std::count(a.begin(), a.end(), 1), 0);  // clipping happens (2 sigma below the mean)
  const double mean = std::accumulate(a.begin(), a.end(), 0.0) / a.size();
  EXPECT_NEAR(mean, 64.0, 4.0);
}

// ---------------------------------------------------------------------------------------------------------
// compare()

// weighted_abs = |ref| everywhere: as for rows that see a single key.
struct CompareFixture : ::testing::Test {
  std::vector<double> ref_out, ref_lse, weighted_abs;
  std::vector<uint16_t> bits;
  std::vector<float> lse;
  void SetUp() override {
    const int n = 4096;
    ref_out.resize(n);
    for (int i = 0; i < n; ++i) ref_out[i] = 0.3 * std::sin(0.37 * i);
    weighted_abs = abs_of(ref_out);
    ref_lse = {1.5, kInf, -0.25, 7.0};
    bits = round(ref_out, DType::kBF16);
    lse.assign(ref_lse.begin(), ref_lse.end());
  }
  static std::vector<uint16_t> round(const std::vector<double>& v, DType dtype) {
    std::vector<uint16_t> r(v.size());
    for (std::size_t i = 0; i < v.size(); ++i)
      r[i] = reference::float_to_half_bits(static_cast<float>(v[i]), dtype);
    return r;
  }
  static std::vector<double> abs_of(const std::vector<double>& v) {
    std::vector<double> a(v.size());
    for (std::size_t i = 0; i < v.size(); ++i) a[i] = std::abs(v[i]);
    return a;
  }
  testing::Comparison run() const {
    return testing::compare(bits, DType::kBF16, lse, ref_out, ref_lse, weighted_abs);
  }
};

TEST_F(CompareFixture, RoundedReferencePasses) {
  const auto c = run();
  EXPECT_TRUE(c.pass) << c.describe();
  EXPECT_GT(c.max_abs, 0.0);
  EXPECT_LE(c.max_abs, 0.3 / 256);
  EXPECT_LT(c.cos_diff, 1e-5);
  EXPECT_GT(c.worst_ratio, 0.0);
  EXPECT_LE(c.worst_ratio, 0.5);  // one bf16 rounding is at most half of u·2|ref|
  EXPECT_EQ(c.nonfinite, 0);
  EXPECT_EQ(c.lse_mismatch_inf, 0);
}

TEST_F(CompareFixture, OneElementOffFails) {
  bits[100] = reference::float_to_bf16(static_cast<float>(ref_out[100] + 0.05));
  const auto c = run();
  EXPECT_FALSE(c.pass) << c.describe();
  EXPECT_NEAR(c.max_abs, 0.05, 0.01);
  EXPECT_GT(c.worst_ratio, 1.0);
}

TEST_F(CompareFixture, LargerWeightedAbsWidensTheBound) {
  // The same 3% error fails where the row saw one key (A = |ref|) and passes where out cancelled from
  // large values (A = 10·|ref|).
  const std::size_t i = 100;
  bits[i] = reference::float_to_bf16(static_cast<float>(ref_out[i] * 1.03));
  EXPECT_FALSE(run().pass) << run().describe();
  weighted_abs[i] = 10 * std::abs(ref_out[i]);
  EXPECT_TRUE(run().pass) << run().describe();
}

TEST(Compare, ElementBoundFollowsTheDtype) {
  EXPECT_DOUBLE_EQ(testing::element_bound(DType::kBF16, -0.5, 1.5), 2.0 / 128 + 1e-6);
  EXPECT_DOUBLE_EQ(testing::element_bound(DType::kFP16, 0.5, 1.5), 2.0 / 1024 + 1e-6);
  EXPECT_DOUBLE_EQ(testing::element_bound(DType::kBF16, 0.0, 0.0), 1e-6);
}

TEST_F(CompareFixture, NaNOutputIsNonfinite) {
  bits[7] = 0x7FC0;
  const auto c = run();
  EXPECT_FALSE(c.pass);
  EXPECT_EQ(c.nonfinite, 1);
}

TEST_F(CompareFixture, UnwrittenPoisonIsNonfinite) {
  std::fill(bits.begin() + 64, bits.begin() + 128, uint16_t{0xFFFF});
  const auto c = run();
  EXPECT_FALSE(c.pass);
  EXPECT_EQ(c.nonfinite, 64);
}

TEST_F(CompareFixture, LseInfinityMismatchFails) {
  lse[1] = 3.0f;  // the reference row is empty
  auto c = run();
  EXPECT_FALSE(c.pass);
  EXPECT_EQ(c.lse_mismatch_inf, 1);
  lse[1] = INFINITY;
  lse[0] = INFINITY;  // the reference row is not empty
  c = run();
  EXPECT_FALSE(c.pass);
  EXPECT_EQ(c.lse_mismatch_inf, 1);
}

TEST_F(CompareFixture, LseRelativeErrorBound) {
  lse[3] = static_cast<float>(7.0 * (1 + 4.0 / 65536));
  auto c = run();
  EXPECT_TRUE(c.pass) << c.describe();
  lse[3] = static_cast<float>(7.0 * (1 + 16.0 / 65536));
  c = run();
  EXPECT_FALSE(c.pass) << c.describe();
  EXPECT_NEAR(c.lse_max_rel, 16.0 / 65536, 1e-6);
}

TEST_F(CompareFixture, NaNLseFails) {
  lse[2] = NAN;
  const auto c = run();
  EXPECT_FALSE(c.pass);
  EXPECT_EQ(c.nonfinite, 1);
}

TEST_F(CompareFixture, EmptyLseIsNotChecked) {
  const auto c = testing::compare(bits, DType::kBF16, {}, ref_out, ref_lse, weighted_abs);
  EXPECT_TRUE(c.pass) << c.describe();
}

TEST_F(CompareFixture, Fp16BoundsAreTighter) {
  // A 0.25% error (below one bf16 ulp) passes in bf16 and fails in fp16 where |ref| is large.
  std::vector<double> ref(ref_out), shifted(ref_out);
  for (std::size_t i = 0; i < ref.size(); ++i) {
    ref[i] *= 10;
    shifted[i] = ref[i] * (1 + 1.0 / 400);
  }
  const auto a = abs_of(ref);
  const auto bf16 = testing::compare(round(shifted, DType::kBF16), DType::kBF16, lse, ref, ref_lse, a);
  const auto fp16 = testing::compare(round(shifted, DType::kFP16), DType::kFP16, lse, ref, ref_lse, a);
  EXPECT_TRUE(bf16.pass) << bf16.describe();
  EXPECT_FALSE(fp16.pass) << fp16.describe();
  const auto exact = testing::compare(round(ref, DType::kFP16), DType::kFP16, lse, ref, ref_lse, a);
  EXPECT_TRUE(exact.pass) << exact.describe();
}

TEST_F(CompareFixture, SizeMismatchThrows) {
  bits.pop_back();
  EXPECT_THROW(run(), std::invalid_argument);
  bits.push_back(0);
  weighted_abs.pop_back();
  EXPECT_THROW(run(), std::invalid_argument);
}

TEST_F(CompareFixture, DescribeNamesEveryNumber) {
  const std::string s = run().describe();
  for (const char* key :
       {"PASS", "max_abs=", "rel_fro=", "rmse=", "cos_diff=", "lse_max_rel=", "worst_ratio=", "nonfinite=0"})
    EXPECT_NE(s.find(key), std::string::npos) << s;
}

TEST(Compare, ZeroReferenceSkipsCosine) {
  const std::vector<double> ref(64, 0.0), ref_lse(1, kInf);
  const std::vector<uint16_t> out(64, 0);
  const auto c = testing::compare(out, DType::kBF16, {INFINITY}, ref, ref_lse, ref);
  EXPECT_TRUE(c.pass) << c.describe();
  EXPECT_EQ(c.cos_diff, 0.0);
  EXPECT_EQ(c.worst_ratio, 0.0);
}

}  // namespace
}  // namespace etap
