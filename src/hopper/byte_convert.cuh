// Byte permutes and FP8 conversions (PTX ISA §9.7.8.7 prmt, §9.7.9.21 cvt): the instructions the FP8
// converter warps (decode/kernel/fp8_dequant.cuh) build their conversions from.
#pragma once

#include <cstdint>

namespace etap::hopper {

// prmt.b32 d, a, b, selector (default mode): byte i of d is byte (s & 7) of {b, a}, or its sign copied 8
// times where bit 3 of selector nibble s is set (common/fp8.hpp emulates it on the host).
__device__ __forceinline__ uint32_t prmt(uint32_t a, uint32_t b, uint32_t selector) {
  uint32_t d;
  asm("prmt.b32 %0, %1, %2, %3;\n" : "=r"(d) : "r"(a), "r"(b), "r"(selector));
  return d;
}

// cvt.rn.f16x2.e4m3x2 (sm_89+), on both halves of a word of four e4m3 codes: codes 0, 1 → `low` (code 0 in
// its low half), codes 2, 3 → `high`. Exact: every e4m3 value is an fp16 value (NaN codes give NaN).
__device__ __forceinline__ void cvt_f16x2_e4m3x4(uint32_t codes, uint32_t& low, uint32_t& high) {
  asm("{\n.reg .b16 l, h;\nmov.b32 {l, h}, %2;\ncvt.rn.f16x2.e4m3x2 %0, l;\ncvt.rn.f16x2.e4m3x2 %1, h;\n}\n"
      : "=r"(low), "=r"(high)
      : "r"(codes));
}

// cvt.rn.f16x2.e4m3x2 on the low 16 bits of `pair` (code 0 in bits [0, 8)): code 0 in the result's low half.
__device__ __forceinline__ uint32_t cvt_f16x2_e4m3x2(uint32_t pair) {
  uint32_t out;
  asm("{\n.reg .b16 l, h;\nmov.b32 {l, h}, %1;\ncvt.rn.f16x2.e4m3x2 %0, l;\n}\n" : "=r"(out) : "r"(pair));
  return out;
}

}  // namespace etap::hopper
