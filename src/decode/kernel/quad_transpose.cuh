// The 4×4 word transpose inside a quad (the 4 lanes that share a row of a wgmma accumulator fragment): lane q
// holds word k of four consecutive 8-column groups, w[k] = columns 8k + 2q, 8k + 2q + 1; afterwards it holds
// all 4 lanes' words of group q, w[k] = columns 8q + 2k, 8q + 2k + 1: 16 contiguous bytes of 16-bit values.
// Two xor butterflies (distance 1, then 2), two shuffles each. Every lane of the warp must call it (full-mask
// shuffles).
#pragma once

#include <cstdint>

#include "common/constants.hpp"

namespace etap::decoding {

__device__ __forceinline__ void quad_transpose(uint32_t (&w)[4], int lane) {
  // Distance 1: lanes of odd q swap their words 0 and 2 with the even partner's words 1 and 3.
  const bool odd = lane & 1;
  uint32_t a = __shfl_xor_sync(kFullWarpMask, odd ? w[0] : w[1], 1);
  uint32_t b = __shfl_xor_sync(kFullWarpMask, odd ? w[2] : w[3], 1);
  if (odd) {
    w[0] = a;
    w[2] = b;
  } else {
    w[1] = a;
    w[3] = b;
  }
  // Distance 2: lanes with q ≥ 2 swap their words 0 and 1 with the lower partner's words 2 and 3.
  const bool high = lane & 2;
  a = __shfl_xor_sync(kFullWarpMask, high ? w[0] : w[2], 2);
  b = __shfl_xor_sync(kFullWarpMask, high ? w[1] : w[3], 2);
  if (high) {
    w[0] = a;
    w[1] = b;
  } else {
    w[2] = a;
    w[3] = b;
  }
}

}  // namespace etap::decoding
