// e4m3 (OCP FP8: 1 sign bit, 4 exponent bits biased by 7, 3 mantissa bits; S.1111.111 is NaN, no
// infinities) to the bits of a 16-bit float, exactly, by bit placement: the 7 exponent/mantissa bits go under
// the 16-bit format's exponent field, which then reads them as the e4m3 value times 2^-(bias - 7) — for
// normals and subnormals alike, since both formats' subnormals are the same fraction of their least
// normal exponent. The caller multiplies by kE4m3Rebias<T> (a power of two, so exactly).
//   bf16 (7 mantissa bits, bias 127): bits = s << 15 | em << 4, value · 2^-120
//   fp16 (10 mantissa bits, bias 15): bits = s << 15 | em << 7, value · 2^-8
// NaN codes (0x7F, 0xFF) come out as ±480 (the pattern of a normal number): the decode kernel only ever
// meets them in cache slots past seqlen, where K is masked by a select and V is zeroed (tail.cuh).
#pragma once

#include <cstdint>

#include "common/host_device.hpp"

namespace etap::fp8 {

inline constexpr int kBf16MantissaBits = 7, kFp16MantissaBits = 10;
inline constexpr int kE4m3MantissaBits = 3, kE4m3Bias = 7;
inline constexpr int kBf16Bias = 127, kFp16Bias = 15;
// The power of two that turns the placed bits into the e4m3 value.
inline constexpr int kBf16RebiasExponent = kBf16Bias - kE4m3Bias;  // 120
inline constexpr int kFp16RebiasExponent = kFp16Bias - kE4m3Bias;  // 8

template <int kMantissaBits>
ETAP_HD constexpr uint16_t e4m3_placed_bits(uint8_t code) {
  return static_cast<uint16_t>((code & 0x80u) << 8 | (code & 0x7Fu) << (kMantissaBits - kE4m3MantissaBits));
}

// Two codes at once: `pair` holds code 0 in bits [0, 8) and code 1 in bits [16, 24) (the rest zero); the
// result holds the two placed 16-bit patterns, code 0 in the low half.
template <int kMantissaBits>
ETAP_HD constexpr uint32_t e4m3x2_placed_bits(uint32_t pair) {
  return (pair & 0x00800080u) << 8 | (pair & 0x007F007Fu) << (kMantissaBits - kE4m3MantissaBits);
}

}  // namespace etap::fp8
