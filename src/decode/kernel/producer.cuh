// Producer warp: reads page ids from the block table (32 at a time, one per lane) and streams each page of
// the CTA's segments into the stage ring with 9 TMA boxes; loads Q once per segment.
#pragma once

#include <cuda.h>

#include "decode/kernel/schedule.cuh"
#include "decode/kernel/shared_storage.cuh"
#include "hopper/pipeline.cuh"
#include "hopper/tma.cuh"

namespace etap::decoding {

template <class Cfg>
__device__ __forceinline__ void producer(const KernelParams& p, SharedStorage<Cfg>& smem,
                                         const CUtensorMap* q_map, const CUtensorMap* kv_map) {
  using namespace etap::hopper;
  const int lane = threadIdx.x % kWarpSize;
  PipelineState<Cfg::kStages> stage;
  uint32_t q_phase = 0;
  const uint32_t q_bytes = Cfg::kBoxes * Cfg::kBoxCols * p.rows * sizeof(typename Cfg::Element);

  for_each_segment(p, blockIdx.x, [&](const Segment& seg) {
    if (seg.pages == 0) return;  // empty request: nothing to load
    if (lane == 0) {
      mbarrier_wait(&smem.q_empty, q_phase ^ 1);
      mbarrier_arrive_expect_tx(&smem.q_full, q_bytes);
      for (int b = 0; b < Cfg::kBoxes; ++b)
        tma_load_4d(smem.q[b], q_map, b * Cfg::kBoxCols, 0, 0, seg.request, &smem.q_full);
    }
    q_phase ^= 1;

    // Page ids, one per lane: `current` holds pages [base, base + 32), `next` the 32 after them, so that
    // the block-table read of the next batch of ids is in flight while this one is streamed.
    const int32_t* table_row = p.block_table + seg.request * p.block_table_stride;
    auto load_ids = [&](int32_t first) { return first + lane < seg.page_end ? table_row[first + lane] : 0; };
    int32_t current = load_ids(seg.page_begin), next = load_ids(seg.page_begin + kWarpSize);
    for (int32_t k = seg.page_begin; k < seg.page_end; ++k) {
      const int32_t j = (k - seg.page_begin) % kWarpSize;
      if (j == 0 && k != seg.page_begin) {
        current = next;
        next = load_ids(k + kWarpSize);
      }
      const int32_t page = __shfl_sync(kFullWarpMask, current, j);
      if (lane == 0) {
        mbarrier_wait(&smem.empty[stage.index], stage.producer_phase());
        mbarrier_arrive_expect_tx(&smem.full[stage.index], Cfg::kPageBytes);
        for (int b = 0; b < Cfg::kBoxes; ++b)
          tma_load_3d(smem.kv[stage.index][b], kv_map, b * Cfg::kBoxCols, 0, page, &smem.full[stage.index]);
      }
      stage.advance();
    }
  });
}

}  // namespace etap::decoding
