// Zeroing whole rows of 128B-swizzled shared-memory boxes (Q padding rows, V rows past seqlen). Whole rows
// need no swizzle arithmetic: the 128B swizzle only permutes the 16-byte chunks within a row.
#pragma once

#include <cstdint>

#include "hopper/smem_desc.cuh"

namespace etap::decoding {

// Rows [first, first + rows) of boxes 0 … boxes − 1 (box(b): the box's first byte), one 16-byte store per
// chunk, shared by `threads` threads of which the caller is number `thread`.
template <class BoxFn>
__device__ __forceinline__ void zero_box_rows(BoxFn&& box, int boxes, int first, int rows, int thread,
                                              int threads) {
  constexpr int kChunkBytes = sizeof(uint4);
  constexpr int kRowChunks = hopper::kSwizzleRowBytes / kChunkBytes;
  const int chunks = boxes * rows * kRowChunks;
  for (int idx = thread; idx < chunks; idx += threads) {
    const int b = idx / (rows * kRowChunks), rem = idx % (rows * kRowChunks);
    auto* row = reinterpret_cast<uint8_t*>(box(b)) + (first + rem / kRowChunks) * hopper::kSwizzleRowBytes;
    *reinterpret_cast<uint4*>(row + (rem % kRowChunks) * kChunkBytes) = make_uint4(0, 0, 0, 0);
  }
}

}  // namespace etap::decoding
