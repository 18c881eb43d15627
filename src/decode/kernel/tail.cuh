// The tail page of a request: cache slots past seqlen hold whatever the cache holds there (NaN in the tests).
// Their P is 0, but 0 · NaN = NaN, so those V rows are zeroed before any P·V product reads them: in the
// transposed kernel each consumer warpgroup zeroes its own V boxes (zero_v_tail); in the rows-on-M kernel
// warpgroup 0 zeroes all of them, ordered by kPReady (rows_consumer.cuh).
#pragma once

#include <cstdint>

#include "decode/kernel/barriers.hpp"
#include "decode/kernel/shared_storage.cuh"
#include "decode/kernel/zero_rows.cuh"
#include "hopper/barrier.cuh"
#include "hopper/fence.cuh"

namespace etap::decoding {

// Rows [valid_rows, kPageTokens) of V boxes first_box … first_box + boxes − 1 of a stage, by `threads`
// threads of which the caller is number `thread`. The caller fences and synchronises.
template <class Cfg>
__device__ __forceinline__ void zero_v_tail_boxes(SharedStorage<Cfg>& smem, int stage, int first_box,
                                                  int boxes, int valid_rows, int thread, int threads) {
  zero_box_rows([&](int b) { return smem.kv[stage][first_box + b]; }, boxes, valid_rows,
                Cfg::kPageTokens - valid_rows, thread, threads);
}

// The transposed kernel: a warpgroup's own V boxes, then its own barrier.
template <class Cfg>
__device__ void zero_v_tail(SharedStorage<Cfg>& smem, int stage, int wg, int valid_rows) {
  zero_v_tail_boxes(smem, stage, wg * Cfg::kVTiles, Cfg::kVTiles, valid_rows,
                    static_cast<int>(threadIdx.x % Cfg::kWarpgroupThreads), Cfg::kWarpgroupThreads);
  hopper::fence_proxy_async_smem();
  hopper::named_barrier_sync(barrier_id(NamedBarrier::kTailZeroed, wg), Cfg::kWarpgroupThreads);
}

}  // namespace etap::decoding
