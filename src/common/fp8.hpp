// e4m3 (OCP FP8: 1 sign bit, 4 exponent bits biased by 7, 3 mantissa bits; S.1111.111 is NaN, no
// infinities) to the bits of a 16-bit float, exactly, by bit placement: the 7 exponent/mantissa bits go under
// the 16-bit format's exponent field, which then reads them as the e4m3 value times 2^-(bias - 7) — for
// normals and subnormals alike, since both formats' subnormals are the same fraction of their least
// normal exponent. The caller multiplies by kE4m3Rebias<T> (a power of two, so exactly).
//   bf16 (7 mantissa bits, bias 127): bits = s << 15 | em << 4, value · 2^-120
//   fp16 (10 mantissa bits, bias 15): bits = s << 15 | em << 7, value · 2^-8
// NaN codes (0x7F, 0xFF) come out as ±480 (the pattern of a normal number) here, and as NaN from the
// hardware conversion the fp16 and V3.2 kernels use (cvt.rn.f16x2.e4m3x2): the decode kernel only ever
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

// The bf16 placement from a sign-extended pair (the decode kernel's form: one prmt, one shift, one and):
// `pair` holds code 0 sign-extended to 16 bits in its low half and code 1 in its high half (bits 15..7 of
// each half = the sign, bits 6..0 = exponent and mantissa). Shifted left by 4, the sign lands in bit 15
// (copies in bits 14..11, masked off) and the 7 exponent/mantissa bits in [4, 11): e4m3x2_placed_bits.
// The shift carries the low half's top bits into bits 16..19 of the high half, which the mask clears.
inline constexpr int kBf16PlaceShift = kBf16MantissaBits - kE4m3MantissaBits;  // 4
inline constexpr uint32_t kBf16PlacedMask = 0x87F087F0u;  // sign bit and 7 bits above the shift, per half
ETAP_HD constexpr uint32_t bf16x2_placed_from_sign_extended(uint32_t pair) {
  return (pair << kBf16PlaceShift) & kBf16PlacedMask;
}

// PTX prmt.b32 in its default mode (PTX ISA 9.7.8.7): byte i of the result is byte (s & 7) of {b, a}
// (a = bytes 0..3), or, where bit 3 of selector nibble s is set, that byte's sign bit copied 8 times.
ETAP_HD constexpr uint32_t prmt(uint32_t a, uint32_t b, uint32_t selector) {
  const uint64_t bytes = static_cast<uint64_t>(b) << 32 | a;
  uint32_t r = 0;
  for (int i = 0; i < 4; ++i) {
    const uint32_t s = (selector >> (4 * i)) & 0xFu;
    uint32_t byte = static_cast<uint32_t>(bytes >> (8 * (s & 7u))) & 0xFFu;
    if ((s & 8u) != 0) byte = (byte & 0x80u) != 0 ? 0xFFu : 0u;
    r |= byte << (8 * i);
  }
  return r;
}
// The selectors that sign-extend codes 0, 1 (low pair) and 2, 3 (high pair) of a word of four codes into
// 16-bit halves: [byte k, sign of byte k, byte k + 1, sign of byte k + 1].
inline constexpr uint32_t kSignExtendLow = 0x9180u, kSignExtendHigh = 0xB3A2u;

}  // namespace etap::fp8
