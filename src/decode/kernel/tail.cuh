// The tail page of a request: cache slots past seqlen hold whatever the cache holds there (NaN in the tests).
// Their P is 0, but 0 · NaN = NaN, so each consumer warpgroup of the transposed kernel zeroes those rows of
// its own V boxes before its P·V product (the rows-on-M kernel: RowsConsumer::zero_v_tail_rows).
#pragma once

#include <cstdint>

#include "decode/kernel/barriers.hpp"
#include "decode/kernel/shared_storage.cuh"
#include "decode/kernel/zero_rows.cuh"
#include "hopper/barrier.cuh"
#include "hopper/fence.cuh"

namespace etap::decoding {

template <class Cfg>
__device__ void zero_v_tail(SharedStorage<Cfg>& smem, int stage, int wg, int valid_rows) {
  zero_box_rows([&](int b) { return smem.kv[stage][wg * Cfg::kVTiles + b]; }, Cfg::kVTiles, valid_rows,
                Cfg::kPageTokens - valid_rows, threadIdx.x % Cfg::kWarpgroupThreads, Cfg::kWarpgroupThreads);
  hopper::fence_proxy_async_smem();
  hopper::named_barrier_sync(barrier_id(NamedBarrier::kTailZeroed, wg), Cfg::kWarpgroupThreads);
}

}  // namespace etap::decoding
