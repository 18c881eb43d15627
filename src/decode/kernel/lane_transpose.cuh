// A register transpose across a group of lanes, so that the values one thread stores are contiguous in memory
// (whole 32-byte sectors per warp store; a half-sector store measured ~10× slower per byte while the other
// SMs stream KV: docs/PERF.md, 2026-12-02d run 2).
//
// The group: the kCount lanes whose ids differ only in bits log2(kStride) … log2(kStride · kCount) − 1 (lane
// index g = (lane / kStride) % kCount within it). Before: lane g holds v[0 … kCount). After: lane g holds at
// v[e] the value lane e held at v[g]. log2(kCount) xor butterflies; at each, a lane keeps half its values and
// trades the other half with its partner, one shuffle per traded value. Every lane of the warp must call it
// (full-mask shuffles).
#pragma once

#include <cstdint>

#include "common/constants.hpp"

namespace etap::decoding {

template <int kCount, int kStride, typename V>
__device__ __forceinline__ void lane_transpose(V (&v)[kCount], int lane) {
  static_assert(kCount >= 2 && (kCount & (kCount - 1)) == 0 && kStride * kCount <= kWarpSize);
  static_assert(sizeof(V) == 4, "32-bit values");
  const int g = (lane / kStride) % kCount;
#pragma unroll
  for (int m = 1; m < kCount; m *= 2) {
    const bool upper = g & m;  // keeps the values whose index has bit m set, trades the others
#pragma unroll
    for (int e = 0; e < kCount; ++e) {
      if (e & m) continue;
      const V got = __shfl_xor_sync(kFullWarpMask, upper ? v[e] : v[e | m], kStride * m);
      if (upper)
        v[e] = got;
      else
        v[e | m] = got;
    }
  }
}

}  // namespace etap::decoding
