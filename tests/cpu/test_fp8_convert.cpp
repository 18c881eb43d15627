// The decode kernel's e4m3 conversion (common/fp8.hpp, the same ETAP_HD functions fp8_convert.cuh runs) over
// all 256 codes, and the in-place staging layout of an FP8 block (fp8_staging.hpp).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <etap/reference.hpp>

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
