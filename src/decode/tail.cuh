// The tail page of a request: cache slots past seqlen hold whatever the cache holds there (NaN in the tests).
// Their P is 0, but 0 · NaN = NaN, so each consumer warpgroup zeroes those rows of its own V boxes before
// its P·V product.
#pragma once

#include <cstdint>

#include "decode/barriers.hpp"
#include "decode/shared_storage.cuh"
#include "hopper/barrier.cuh"
#include "hopper/fence.cuh"
#include "hopper/smem_desc.cuh"

namespace etap::decoding {

template <class Cfg>
__device__ void zero_v_tail(SharedStorage<Cfg>& smem, int stage, int wg, int valid_rows) {
  const int rows = Cfg::kPageTokens - valid_rows;
  const int chunks = Cfg::kVTiles * rows * 8;  // 16-byte chunks
  for (int idx = threadIdx.x % 128; idx < chunks; idx += 128) {
    const int box = wg * Cfg::kVTiles + idx / (rows * 8), rem = idx % (rows * 8);
    auto* row =
        reinterpret_cast<uint8_t*>(smem.kv[stage][box]) + (valid_rows + rem / 8) * hopper::kSwizzleRowBytes;
    *reinterpret_cast<uint4*>(row + (rem % 8) * 16) = make_uint4(0, 0, 0, 0);
  }
  hopper::fence_proxy_async_smem();
  hopper::named_barrier_sync(barrier_id(NamedBarrier::kTailZeroed, wg), 128);
}

}  // namespace etap::decoding
