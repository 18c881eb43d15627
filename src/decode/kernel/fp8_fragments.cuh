// The register-operand FP8 consumer's A fragments (fp8_consumer.cuh): e4m3 bytes of a ring box in shared
// memory (64 tokens × 64 bytes, no swizzle) → wgmma m64nNk16 A registers of bf16/fp16, exactly
// (common/fp8.hpp), by the maps of fp8_fragment_maps.hpp:
//   K (Sᵀ): a thread loads 16 bytes of each of its two token rows per box; word j of row g (g + 8) is
//     k-step j's a0|a2 (a1|a3), in the order e4m3x4_to returns them.
//   V (Oᵀ): a thread loads 8 bytes (its 8 channels) of each of the 4 tokens of a k-step; one prmt picks the
//     byte of one channel from two tokens (sign-extended for bf16), the pair a register needs.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <type_traits>

#include "common/fp8.hpp"
#include "decode/kernel/fp8_dequant.cuh"
#include "decode/kernel/fp8_fragment_maps.hpp"
#include "hopper/byte_convert.cuh"

namespace etap::decoding {

inline constexpr int kFp8RowBytes = fp8_fragments::kBoxColumns;  // one token's row of a ring box

// The codes of byte `kByte` of `a` (low half) and of `b` (high half) as a pair of T, exactly.
template <typename T, int kByte>
__device__ __forceinline__ uint32_t e4m3_pair_to(uint32_t a, uint32_t b) {
  static_assert(kByte >= 0 && kByte < 4);
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    constexpr uint32_t kSelect = fp8_fragments::pair_select_sign_extended(kByte);
    constexpr uint32_t kRebias = ((fp8::kBf16RebiasExponent + fp8::kBf16Bias) << 7) * 0x10001u;
    const uint32_t placed = fp8::bf16x2_placed_from_sign_extended(hopper::prmt(a, b, kSelect));
    const __nv_bfloat162 v = __hmul2(*reinterpret_cast<const __nv_bfloat162*>(&placed),
                                     *reinterpret_cast<const __nv_bfloat162*>(&kRebias));
    return *reinterpret_cast<const uint32_t*>(&v);
  } else {
    static_assert(std::is_same_v<T, __half>, "16-bit elements only");
    constexpr uint32_t kSelect = fp8_fragments::pair_select(kByte);
    return hopper::cvt_f16x2_e4m3x2(hopper::prmt(a, b, kSelect));
  }
}

// K: the fragments of the 4 k-steps of one box (or, kSteps = 2, of its half at byte `half_bytes`) from the
// thread's rows g and g + 8. `row_g` points at byte 16q of row 16w + g of the box.
template <typename T, int kSteps>
struct KFragments {
  uint32_t a[kSteps][4];

  __device__ __forceinline__ void load(const uint8_t* row_g) {
    uint32_t lo[kSteps], hi[kSteps];
    if constexpr (kSteps == 4) {
      const uint4 x = *reinterpret_cast<const uint4*>(row_g);
      const uint4 y = *reinterpret_cast<const uint4*>(row_g + 8 * kFp8RowBytes);
      lo[0] = x.x, lo[1] = x.y, lo[2] = x.z, lo[3] = x.w;
      hi[0] = y.x, hi[1] = y.y, hi[2] = y.z, hi[3] = y.w;
    } else {
      static_assert(kSteps == 2);
      const uint2 x = *reinterpret_cast<const uint2*>(row_g);
      const uint2 y = *reinterpret_cast<const uint2*>(row_g + 8 * kFp8RowBytes);
      lo[0] = x.x, lo[1] = x.y;
      hi[0] = y.x, hi[1] = y.y;
    }
#pragma unroll
    for (int j = 0; j < kSteps; ++j) {
      const uint2 g = e4m3x4_to<T>(lo[j]), g8 = e4m3x4_to<T>(hi[j]);
      a[j][0] = g.x;   // row g, k 2q, 2q + 1
      a[j][1] = g8.x;  // row g + 8
      a[j][2] = g.y;   // row g, k 2q + 8, 2q + 9
      a[j][3] = g8.y;
    }
  }
};

// V: the fragments of one k-step (16 logical kv) for the warpgroup's 4 Oᵀ tiles. `channels` points at byte
// 8g of token q of the k-step's first 16 tokens (token 16j + q of the box 4wg + w).
template <typename T, int kTiles>
struct VFragments {
  uint32_t a[kTiles][4];

  __device__ __forceinline__ void load(const uint8_t* channels) {
    static_assert(kTiles == 4, "8 channels per thread: 4 tiles × rows g, g + 8");
    uint2 v[4];  // tokens 16j + 4e + q, e = 0..3: the thread's logical kv 2q, 2q + 1, 2q + 8, 2q + 9
#pragma unroll
    for (int e = 0; e < 4; ++e) v[e] = *reinterpret_cast<const uint2*>(channels + 4 * e * kFp8RowBytes);
    set_tile<0>(v[0].x, v[1].x, v[2].x, v[3].x);
    set_tile<1>(v[0].x, v[1].x, v[2].x, v[3].x);
    set_tile<2>(v[0].y, v[1].y, v[2].y, v[3].y);
    set_tile<3>(v[0].y, v[1].y, v[2].y, v[3].y);
  }

  // Tile t's rows g (h = 0) and g + 8 (h = 1) are channel bytes 2t and 2t + 1: byte 2(t % 2) (+ 1) of the
  // word holding them.
  template <int kTile>
  __device__ __forceinline__ void set_tile(uint32_t e0, uint32_t e1, uint32_t e2, uint32_t e3) {
    constexpr int kByte = 2 * (kTile % 2);
    a[kTile][0] = e4m3_pair_to<T, kByte>(e0, e1);      // row g, kv 2q, 2q + 1
    a[kTile][1] = e4m3_pair_to<T, kByte + 1>(e0, e1);  // row g + 8
    a[kTile][2] = e4m3_pair_to<T, kByte>(e2, e3);      // row g, kv 2q + 8, 2q + 9
    a[kTile][3] = e4m3_pair_to<T, kByte + 1>(e2, e3);
  }
};

}  // namespace etap::decoding
