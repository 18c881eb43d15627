// The decode kernel's grid: x = row tile, y = part (the plan's CTAs). The row tiles of one part are
// consecutive CTAs, so the block scheduler places them side by side and their reads of the same KV blocks
// (the tiles of one KV head: h_q = 128, MTP) meet in L2. With the part on x, a part's two tiles were
// num_parts CTAs apart; b=128 4K h_q 128 then took about the time of reading the cache twice (docs/PERF.md,
// 2026-12-02e).
#pragma once

#include <cstdint>

#include "common/host_device.hpp"

namespace etap::decoding {

struct DecodeGrid {
  int32_t num_parts, num_tiles;
  // The CTA of `linear` = blockIdx.y · gridDim.x + blockIdx.x (the timeline's order).
  ETAP_HD constexpr int32_t part_of(int64_t linear) const { return static_cast<int32_t>(linear / num_tiles); }
  ETAP_HD constexpr int32_t tile_of(int64_t linear) const { return static_cast<int32_t>(linear % num_tiles); }
#ifdef __CUDACC__
  __host__ dim3 shape() const {
    return dim3(num_tiles, num_parts);
  }
#endif
};

#ifdef __CUDACC__
__device__ __forceinline__ int32_t cta_part() {
  return static_cast<int32_t>(blockIdx.y);
}
__device__ __forceinline__ int32_t cta_tile() {
  return static_cast<int32_t>(blockIdx.x);
}
#endif

}  // namespace etap::decoding
