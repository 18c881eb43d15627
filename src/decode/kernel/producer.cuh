// Producer warp: for each segment of the CTA, loads the row tile's Q once (one TMA box per 64 columns:
// tile_heads heads × tile_tokens tokens) and streams the segment's KV blocks into the stage ring with the
// loader its page size needs (kv_load.cuh).
#pragma once

#include <cuda.h>

#include "decode/kernel/cta_rows.cuh"
#include "decode/kernel/kv_load.cuh"
#include "decode/kernel/schedule.cuh"
#include "decode/kernel/shared_storage.cuh"
#include "decode/kernel/timeline.cuh"
#include "hopper/pipeline.cuh"
#include "hopper/tma.cuh"

namespace etap::decoding {

template <class Cfg>
__device__ __forceinline__ void producer(const KernelParams& p, SharedStorage<Cfg>& smem,
                                         const CUtensorMap* q_map, const CUtensorMap* kv_map,
                                         const CUtensorMap* rope_map) {
  using namespace etap::hopper;
  const int lane = threadIdx.x % kWarpSize;
  PipelineState<Cfg::kStages> stage;
  uint32_t q_phase = 0;
  const RowTile tile = row_tile(p.tiling, p.s_q, blockIdx.y);
  // The box is the whole tile even where its last heads or tokens do not exist: TMA zero-fills outside q
  // and counts the full box.
  const uint32_t q_bytes = Cfg::kBoxes * Cfg::kBoxCols * p.tiling.tile_rows() * sizeof(typename Cfg::Element);
  KvBlockLoader<Cfg> kv{p, smem, kv_map, rope_map, tile.kv_head, lane};
  CtaRows<Cfg::kTiled> rows(p);  // varlen: the tile's tokens in each request, as the consumers see them

  for_each_segment(p, blockIdx.x, [&](const Segment& seg) {
    if (!rows.enter(p, seg.request)) return;  // varlen: the tile lies past this request's query tokens
    if (seg.pages == 0) return;               // empty request: nothing to load
    timeline::probe(smem, timeline::Event::kSegmentBegin, seg.request);
    if (lane == 0) {
      mbarrier_wait(&smem.q_empty, q_phase ^ 1);
      mbarrier_arrive_expect_tx(&smem.q_full, q_bytes);
      // Varlen: tokens of the next request inside the box are padding columns (masked, never stored).
      const int32_t token = rows.q_box_token(), request = rows.q_box_request(p, seg.request);
      for (int b = 0; b < Cfg::kBoxes; ++b)
        tma_load_4d(smem.q[b], q_map, b * Cfg::kBoxCols, tile.head0, token, request, &smem.q_full);
    }
    timeline::probe(smem, timeline::Event::kQIssued);
    q_phase ^= 1;
    const int32_t* table_row = p.block_table + seg.request * p.block_table_stride;
    switch (p.kv_load) {
      case KvLoad::kWholeBlocks:
        kv.whole_blocks(seg, table_row, stage);
        break;
      case KvLoad::kChunks:
        kv.chunks(seg, table_row, stage);
        break;
      case KvLoad::kGather:
        kv.gather(seg, table_row, stage);
        break;
    }
  });
  if constexpr (Cfg::kConverterWarps)
    if (lane == 0) Fp8Loads<Cfg>::stop_converter(p, smem, stage);
  timeline::probe(smem, timeline::Event::kExit);
}

}  // namespace etap::decoding
