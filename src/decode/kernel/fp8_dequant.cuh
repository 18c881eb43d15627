// e4m3 → 16-bit conversions of the FP8 converter warps (fp8_convert.cuh) and of the register-FP8 K fragments
// (fp8_fragments.cuh), four codes (one 32-bit word) at a time, as two packed pairs (code 0 in the low half
// of .x). Every one is exact (common/fp8.hpp):
//   bf16: one prmt sign-extends two codes into 16-bit halves, a shift and a mask place their bits under the
//     bf16 exponent field (fp8::bf16x2_placed_from_sign_extended), one bf16x2 multiply by 2^120 rebiases:
//     4 instructions per pair. NaN codes give ±480.
//   fp16: cvt.rn.f16x2.e4m3x2, one instruction per pair (NaN codes give NaN).
//   V3.2 (bf16, group scale): e4m3 → fp16 (exact) → fp32 (exact), times the scale in fp32 (one rounding),
//     rounded to bf16 (RN): 6 instructions per pair, the same value as the fp64 reference rounded twice.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <type_traits>

#include "common/fp8.hpp"
#include "hopper/byte_convert.cuh"

namespace etap::decoding {

template <typename T>
__device__ __forceinline__ uint2 e4m3x4_to(uint32_t codes) {
  uint2 out;
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    // 2^120 in both halves: exponent field only.
    constexpr uint32_t kRebias = ((fp8::kBf16RebiasExponent + fp8::kBf16Bias) << 7) * 0x10001u;
    const uint32_t lo = fp8::bf16x2_placed_from_sign_extended(hopper::prmt(codes, 0, fp8::kSignExtendLow));
    const uint32_t hi = fp8::bf16x2_placed_from_sign_extended(hopper::prmt(codes, 0, fp8::kSignExtendHigh));
    const __nv_bfloat162 r = *reinterpret_cast<const __nv_bfloat162*>(&kRebias);
    const __nv_bfloat162 a = __hmul2(*reinterpret_cast<const __nv_bfloat162*>(&lo), r);
    const __nv_bfloat162 b = __hmul2(*reinterpret_cast<const __nv_bfloat162*>(&hi), r);
    out.x = *reinterpret_cast<const uint32_t*>(&a);
    out.y = *reinterpret_cast<const uint32_t*>(&b);
  } else {
    static_assert(std::is_same_v<T, __half>, "16-bit elements only");
    hopper::cvt_f16x2_e4m3x4(codes, out.x, out.y);
  }
  return out;
}

// Four e4m3 codes times `scale` → four bf16 (DeepSeek-V3.2's group scales).
__device__ __forceinline__ uint2 e4m3x4_scaled_bf16(uint32_t codes, float scale) {
  uint2 h;
  hopper::cvt_f16x2_e4m3x4(codes, h.x, h.y);
  const float2 a = __half22float2(*reinterpret_cast<const __half2*>(&h.x));
  const float2 b = __half22float2(*reinterpret_cast<const __half2*>(&h.y));
  const __nv_bfloat162 lo = __floats2bfloat162_rn(a.x * scale, a.y * scale);
  const __nv_bfloat162 hi = __floats2bfloat162_rn(b.x * scale, b.y * scale);
  return make_uint2(*reinterpret_cast<const uint32_t*>(&lo), *reinterpret_cast<const uint32_t*>(&hi));
}

}  // namespace etap::decoding
