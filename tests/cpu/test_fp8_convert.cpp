// The decode kernel's e4m3 conversion (common/fp8.hpp, the same ETAP_HD functions fp8_convert.cuh runs) over
// all 256 codes, and the in-place staging layout of an FP8 block (fp8_staging.hpp).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <etap/reference.hpp>
#include <vector>

#include "common/fp8.hpp"
#include "decode/kernel/fp8_staging.hpp"

namespace etap {
namespace {

using reference::fp8_e4m3_to_float;
using reference::half_bits_to_float;

bool is_nan_code(uint32_t code) {
  return (code & 0x7F) == 0x7F;
}

// Every non-NaN code: placed bits · 2^rebias is the e4m3 value exactly, subnormals and ±0 included.
TEST(Fp8Convert, Bf16PlacementIsExactForAllCodes) {
  for (uint32_t code = 0; code < 256; ++code) {
    SCOPED_TRACE(code);
    const uint16_t bits = fp8::e4m3_placed_bits<fp8::kBf16MantissaBits>(static_cast<uint8_t>(code));
    const double value =
        std::ldexp(static_cast<double>(half_bits_to_float(bits, DType::kBF16)), fp8::kBf16RebiasExponent);
    if (is_nan_code(code)) {
      EXPECT_EQ(std::fabs(value), 480.0);  // documented: NaN codes decode to ±480
      continue;
    }
    EXPECT_EQ(value, static_cast<double>(fp8_e4m3_to_float(static_cast<uint8_t>(code))));
    EXPECT_EQ(std::signbit(value), (code & 0x80) != 0);
  }
}

TEST(Fp8Convert, Fp16PlacementIsExactForAllCodes) {
  for (uint32_t code = 0; code < 256; ++code) {
    SCOPED_TRACE(code);
    const uint16_t bits = fp8::e4m3_placed_bits<fp8::kFp16MantissaBits>(static_cast<uint8_t>(code));
    const double value =
        std::ldexp(static_cast<double>(half_bits_to_float(bits, DType::kFP16)), fp8::kFp16RebiasExponent);
    if (is_nan_code(code)) {
      EXPECT_EQ(std::fabs(value), 480.0);
      continue;
    }
    EXPECT_EQ(value, static_cast<double>(fp8_e4m3_to_float(static_cast<uint8_t>(code))));
    EXPECT_EQ(std::signbit(value), (code & 0x80) != 0);
  }
}

// The packed form the kernel uses on two codes at once equals two scalar placements.
TEST(Fp8Convert, PairPlacementMatchesScalar) {
  for (uint32_t a = 0; a < 256; ++a)
    for (uint32_t b = 0; b < 256; b += 7) {
      const uint32_t pair = a | b << 16;
      const uint32_t bf = fp8::e4m3x2_placed_bits<fp8::kBf16MantissaBits>(pair);
      const uint32_t hf = fp8::e4m3x2_placed_bits<fp8::kFp16MantissaBits>(pair);
      EXPECT_EQ(bf & 0xFFFF, fp8::e4m3_placed_bits<fp8::kBf16MantissaBits>(static_cast<uint8_t>(a)));
      EXPECT_EQ(bf >> 16, fp8::e4m3_placed_bits<fp8::kBf16MantissaBits>(static_cast<uint8_t>(b)));
      EXPECT_EQ(hf & 0xFFFF, fp8::e4m3_placed_bits<fp8::kFp16MantissaBits>(static_cast<uint8_t>(a)));
      EXPECT_EQ(hf >> 16, fp8::e4m3_placed_bits<fp8::kFp16MantissaBits>(static_cast<uint8_t>(b)));
    }
}

// The rebias constants the kernel multiplies by, as 16-bit patterns, are exactly 2^120 and 2^8.
TEST(Fp8Convert, RebiasPatterns) {
  const uint16_t bf = (fp8::kBf16RebiasExponent + fp8::kBf16Bias) << 7;
  const uint16_t hf = (fp8::kFp16RebiasExponent + fp8::kFp16Bias) << 10;
  EXPECT_EQ(half_bits_to_float(bf, DType::kBF16), std::ldexp(1.f, 120));
  EXPECT_EQ(half_bits_to_float(hf, DType::kFP16), 256.f);
}

// The prmt emulation on hand-checked words: plain bytes, zero bytes from b, sign copies.
TEST(Fp8Convert, PrmtEmulation) {
  EXPECT_EQ(fp8::prmt(0x44332211u, 0x88776655u, 0x3210u), 0x44332211u);
  EXPECT_EQ(fp8::prmt(0x44332211u, 0x88776655u, 0x7654u), 0x88776655u);
  EXPECT_EQ(fp8::prmt(0x44332211u, 0u, 0x4140u), 0x00220011u);
  EXPECT_EQ(fp8::prmt(0x0000FF01u, 0u, fp8::kSignExtendLow), 0xFFFF0001u);
  EXPECT_EQ(fp8::prmt(0x7F800000u, 0u, fp8::kSignExtendHigh), 0x007FFF80u);
}

// The kernel's bf16 form (prmt sign extension, shift, mask) equals the proven scalar placement for both
// pairs of a word, every pair of codes, whatever the word's other two bytes hold.
TEST(Fp8Convert, SignExtendedPlacementMatchesScalar) {
  const uint32_t others[] = {0x00u, 0x7Fu, 0x80u, 0xFFu, 0x5Au, 0xA5u};
  for (uint32_t a = 0; a < 256; ++a)
    for (uint32_t b = 0; b < 256; ++b) {
      const uint32_t want =
          fp8::e4m3_placed_bits<fp8::kBf16MantissaBits>(static_cast<uint8_t>(a)) |
          static_cast<uint32_t>(fp8::e4m3_placed_bits<fp8::kBf16MantissaBits>(static_cast<uint8_t>(b))) << 16;
      for (uint32_t x : others)
        for (uint32_t y : others) {
          const uint32_t low_word = a | b << 8 | x << 16 | y << 24,
                         high_word = x | y << 8 | a << 16 | b << 24;
          ASSERT_EQ(fp8::bf16x2_placed_from_sign_extended(fp8::prmt(low_word, 0, fp8::kSignExtendLow)), want)
              << a << " " << b << " " << x << " " << y;
          ASSERT_EQ(fp8::bf16x2_placed_from_sign_extended(fp8::prmt(high_word, 0, fp8::kSignExtendHigh)),
                    want)
              << a << " " << b << " " << x << " " << y;
        }
    }
}

// Replays the converter's walk (Fp8Staging::Walk, the functions fp8_convert.cuh runs) byte by byte, in
// place: every thread's loads and stores in program order (loads of group g + 1 before the stores of group
// g), the converter warps' syncs where sync_groups() puts them. Each staging byte must be read in an epoch
// (between syncs) strictly before the one any store overwrites it in, and never after; every converted ring
// byte is stored exactly once, every latent staging byte read exactly once, and nothing reaches V3.2's RoPE
// box.
template <bool kV32, int kGroupSteps>
void expect_walk_safe(int expected_syncs) {
  using S = decoding::Fp8Staging<kV32>;
  using W = typename S::template Walk<96, kGroupSteps>;
  constexpr int kThreads = 96, kStage = S::kRingBytes;
  EXPECT_TRUE(W::safe());
  std::vector<int> last_read(kStage, -1), stores(kStage, 0), reads(kStage, 0);
  int epoch = 0, syncs = 0;
  auto load = [&](int g) {
    for (int t = 0; t < kThreads; ++t)
      for (int k = g * kGroupSteps; k < (g + 1) * kGroupSteps; ++k) {
        if (W::row(t, k) >= W::kRows) continue;
        for (int i = 0; i < 16; ++i) {
          const int byte = S::kOffset + W::source(t, k) + i;
          ASSERT_EQ(stores[byte], 0) << "byte " << byte << " read after a store overwrote it";
          last_read[byte] = std::max(last_read[byte], epoch);
          ++reads[byte];
        }
        if (kV32)
          for (int i = 0; i < 4; ++i) {
            const int byte = S::kOffset + W::scale_byte(t, k) + i;
            ASSERT_GE(byte, S::kOffset + S::kScaleBox * S::kBoxBytes);
            ASSERT_EQ(stores[byte], 0) << "scale byte " << byte << " read after a store overwrote it";
            last_read[byte] = std::max(last_read[byte], epoch);
          }
      }
  };
  auto store = [&](int g) {
    if ((W::sync_groups() >> g) & 1u) {
      ++epoch;
      ++syncs;
    }
    for (int t = 0; t < kThreads; ++t)
      for (int k = g * kGroupSteps; k < (g + 1) * kGroupSteps; ++k) {
        if (W::row(t, k) >= W::kRows) continue;
        for (int half = 0; half < 2; ++half)
          for (int i = 0; i < 16; ++i) {
            const int byte = W::destination(t, k, half) + i;
            ASSERT_LT(byte, S::kLatentBoxes * W::kRingRowBytes * S::kTokens);  // V3.2: below the RoPE box
            ASSERT_LT(last_read[byte], epoch) << "byte " << byte << " stored in group " << g;
            ++stores[byte];
          }
      }
  };
  load(0);
  for (int g = 0; g < W::kGroups; ++g) {
    if (g + 1 < W::kGroups) load(g + 1);
    store(g);
  }
  EXPECT_EQ(syncs, expected_syncs);
  for (int byte = 0; byte < S::kLatentBoxes * W::kRingRowBytes * S::kTokens; ++byte)
    ASSERT_EQ(stores[byte], 1) << byte;
  for (int j = 0; j < S::kLatentBoxes; ++j)
    for (int i = 0; i < S::kBoxBytes; ++i) ASSERT_EQ(reads[S::box_offset(j) + i], 1) << j << " " << i;
}

TEST(Fp8Staging, PerTensorWalkIsSafeInPlace) {
  expect_walk_safe<false, 3>(2);
}
TEST(Fp8Staging, DeepSeekV32WalkIsSafeInPlace) {
  expect_walk_safe<true, 2>(3);
}
TEST(Fp8Staging, WalkSplitsTheBlockEvenly) {
  using PerTensor = decoding::Fp8Staging<false>::Walk<96, 3>;
  EXPECT_EQ(PerTensor::kSteps, 24);  // 24 pieces of 16 codes per thread
  EXPECT_EQ(PerTensor::kGroups, 8);
  EXPECT_TRUE(PerTensor::kEveryStepFull);
  using V32 = decoding::Fp8Staging<true>::Walk<96, 2>;
  EXPECT_EQ(V32::kSteps, 22);  // 2048 pieces: 21 or 22 per thread
  EXPECT_EQ(V32::kGroups, 12);
  EXPECT_FALSE(V32::kEveryStepFull);
}

// Replays the converter's chunk order over byte ownership: a chunk's writes never reach staging bytes a
// later chunk still reads, the staging fits the stage, and (V3.2) stays below ring box 8 (RoPE by TMA).
template <bool kV32>
void expect_in_place_safe() {
  using S = decoding::Fp8Staging<kV32>;
  EXPECT_TRUE(S::in_place_safe());
  EXPECT_EQ(S::kOffset % 1024, 0);
  EXPECT_LE(S::kOffset + S::kBoxes * S::kBoxBytes, S::kEnd);
  // Byte-level replay: last chunk reading each staging byte vs. the first chunk writing it.
  for (int c = 0; c < S::kChunks; ++c)
    for (int byte = c * 8192; byte < (c + 1) * 8192; ++byte)
      for (int j = 0; j < S::kBoxes; ++j) {
        const bool in_box = byte >= S::box_offset(j) && byte < S::box_offset(j) + S::kBoxBytes;
        if (!in_box) continue;
        for (int later = c + 1; later < S::kChunks; ++later)
          ASSERT_FALSE(S::reads(later, j))
              << "chunk " << c << " overwrites staging box " << j << " before chunk " << later << " reads it";
      }
}

TEST(Fp8Staging, PerTensorInPlaceOrderIsSafe) {
  expect_in_place_safe<false>();
  using S = decoding::Fp8Staging<false>;
  EXPECT_EQ(S::kBoxes, 9);
  EXPECT_EQ(S::kOffset, 9 * 8192 - 9 * 4096);  // the upper half of the stage
  for (int j = 0; j < S::kBoxes; ++j) EXPECT_EQ(S::column(j), 64 * j);
  EXPECT_EQ(S::kTokenBytes, 576);
}

TEST(Fp8Staging, DeepSeekV32InPlaceOrderIsSafe) {
  expect_in_place_safe<true>();
  using S = decoding::Fp8Staging<true>;
  EXPECT_EQ(S::kBoxes, 9);
  EXPECT_EQ(S::column(S::kScaleBox), Fp8DeepSeekV32Token::kScaleOffset);
  EXPECT_EQ(S::kRopeColumn, Fp8DeepSeekV32Token::kRopeOffset);
  EXPECT_EQ(S::kEnd, 8 * 8192);  // ring box 8 is RoPE's
  // Every byte of the 656-byte token the kernel needs is loaded: latent [0, 512) by boxes 0..7, the scales
  // [512, 528) by the scale box, RoPE [528, 656) by its own box.
  for (int j = 0; j < 8; ++j) EXPECT_EQ(S::column(j), 64 * j);
  EXPECT_EQ(S::kRopeColumn + 128, Fp8DeepSeekV32Token::kBytes);
  EXPECT_EQ(S::kTokenBytes, 9 * 64 + 128);
}

}  // namespace
}  // namespace etap
