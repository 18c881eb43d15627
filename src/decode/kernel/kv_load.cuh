// How the producer warp moves one 64-token KV block of a request into a stage of the ring, by page size
// (KvLoad, chosen on the host): whole TMA boxes when pages hold whole blocks, page-aligned TMA chunks when
// pages are multiples of 8 tokens, and a 16-byte cp.async gather for any other page size (SGLang's 1).
// Every loader streams the blocks [seg.page_begin, seg.page_end) of its segment through `stage`; the block's
// rows land as TMA would put them (128B-swizzled, box b = columns [64b, 64b + 64)). Rows past seqlen in the
// last block may hold anything: the consumers mask K and zero V there.
#pragma once

#include <cuda.h>

#include "common/constants.hpp"
#include "decode/kernel/fp8_load.cuh"
#include "decode/kernel/schedule.cuh"
#include "decode/kernel/shared_storage.cuh"
#include "decode/kernel/timeline.cuh"
#include "hopper/cp_async.cuh"
#include "hopper/fence.cuh"
#include "hopper/pipeline.cuh"
#include "hopper/smem_desc.cuh"
#include "hopper/tma.cuh"

namespace etap::decoding {

template <class Cfg>
struct KvBlockLoader {
  using T = typename Cfg::Element;
  const KernelParams& p;
  SharedStorage<Cfg>& smem;
  const CUtensorMap* kv_map;    // [pages, page_size, h_kv, d_qk], box 64 cols × 1 head × box tokens
  const CUtensorMap* rope_map;  // FP8 V3.2: the cache as bf16 [.., 328], box 64 cols (fp8_load.cuh)
  int32_t kv_head;
  int lane;
  using Fp8 = Fp8Loads<Cfg>;

  // Lane 0, before loading a block: the stage (FP8: its staging, fp8_load.cuh) may be overwritten.
  __device__ __forceinline__ void wait_free(const hopper::PipelineState<Cfg::kStages>& stage) {
    if constexpr (Cfg::kFp8)
      Fp8::wait_free(smem, stage);
    else
      hopper::mbarrier_wait(&smem.empty[stage.index], stage.producer_phase());
  }

  // page_size % 64 == 0: block k is tokens [64·(k mod B), +64) of page table[k / B], B = page_size / 64. Page
  // ids are read 32 blocks at a time, one per lane, the next 32 in flight while these are streamed.
  __device__ void whole_blocks(const Segment& seg, const int32_t* table_row,
                               hopper::PipelineState<Cfg::kStages>& stage) {
    const int32_t blocks_per_page = p.page_size / kBlockTokens;
    auto load_ids = [&](int32_t first) {
      const int32_t k = first + lane;
      return k < seg.page_end ? table_row[k / blocks_per_page] : 0;
    };
    int32_t current = load_ids(seg.page_begin), next = load_ids(seg.page_begin + kWarpSize);
    for (int32_t k = seg.page_begin; k < seg.page_end; ++k) {
      const int32_t j = (k - seg.page_begin) % kWarpSize;
      if (j == 0 && k != seg.page_begin) {
        current = next;
        next = load_ids(k + kWarpSize);
      }
      const int32_t page = __shfl_sync(kFullWarpMask, current, j);
      // The shuffle waited for the page ids' load: how long the block-table read held the first TMA back.
      if (k == seg.page_begin) timeline::probe(smem, timeline::Event::kTableRead, k);
      if (lane == 0) {
        const int32_t token = (k % blocks_per_page) * kBlockTokens;
        wait_free(stage);
        if constexpr (Cfg::kRegisterFp8) {
          Fp8::load_boxes(smem, stage.index, kv_map, kv_head, token, page);
        } else if constexpr (Cfg::kFp8) {
          Fp8::expect(smem, stage.index, kBlockTokens);
          Fp8::load(smem, stage.index, kv_map, rope_map, 0, kv_head, token, page);
        } else {
          // One barrier per box (block_arrival.cuh): the consumers start on box 0 while the rest lands.
          for (int b = 0; b < Cfg::kBoxes; ++b) {
            uint64_t* landed = &smem.box_full[stage.index][b];
            hopper::mbarrier_arrive_expect_tx(landed, Cfg::kBoxBytes);
            hopper::tma_load_4d(smem.kv[stage.index][b], kv_map, b * Cfg::kBoxCols, kv_head, token, page,
                                landed);
          }
        }
      }
      timeline::probe(smem, timeline::Event::kBlockIssued, k);
      stage.advance();
    }
  }

  // page_size % 8 == 0: lane c loads chunk c of the block, tokens [64k + c·ct, +ct) with ct = chunk_tokens
  // (a divisor of page_size and 64, so a chunk never crosses a page). A chunk lands at row c·ct ≥ 8 rows into
  // the box: a whole number of 1024-byte swizzle atoms. Chunks past seqlen are not loaded.
  __device__ void chunks(const Segment& seg, const int32_t* table_row,
                         hopper::PipelineState<Cfg::kStages>& stage) {
    const int32_t ct = p.chunk_tokens, per_block = kBlockTokens / ct;
    const uint32_t chunk_bytes = Cfg::kBoxes * ct * Cfg::kBoxCols * sizeof(T);
    auto load_id = [&](int32_t k) {
      const int32_t t = k * kBlockTokens + lane * ct;
      return k < seg.page_end && lane < per_block && t < seg.seqlen ? table_row[t / p.page_size] : 0;
    };
    int32_t id = load_id(seg.page_begin);
    for (int32_t k = seg.page_begin; k < seg.page_end; ++k) {
      const int32_t next_id = load_id(k + 1);  // in flight during this block's wait
      const int32_t t = k * kBlockTokens + lane * ct;
      const int32_t left = seg.seqlen - k * kBlockTokens;
      const int32_t loaded = left >= kBlockTokens ? per_block : (left + ct - 1) / ct;
      if (lane == 0) {
        wait_free(stage);
        if constexpr (Cfg::kFp8)
          Fp8::expect(smem, stage.index, loaded * ct);
        else
          hopper::mbarrier_arrive_expect_tx(&smem.full[stage.index], loaded * chunk_bytes);
      }
      __syncwarp();
      if (lane < loaded) {
        if constexpr (Cfg::kFp8) {
          Fp8::load(smem, stage.index, kv_map, rope_map, lane * ct, kv_head, t % p.page_size, id);
        } else {
          for (int b = 0; b < Cfg::kBoxes; ++b)
            hopper::tma_load_4d(smem.kv[stage.index][b] + lane * ct * Cfg::kBoxCols, kv_map,
                                b * Cfg::kBoxCols, kv_head, t % p.page_size, id, &smem.full[stage.index]);
        }
      }
      id = next_id;
      stage.advance();
    }
  }

  // Any page size: the warp copies one token row at a time, 16 bytes per lane, into its swizzled place; each
  // lane waits for its copies and fences them for wgmma, then lane 0's arrival completes the stage's phase
  // (the consumers' loop stays free of a gather-only fence). Lane l reads the page ids of tokens l and l + 32
  // of the block before waiting for the stage.
  __device__ void gather(const Segment& seg, const int32_t* table_row,
                         hopper::PipelineState<Cfg::kStages>& stage) {
    constexpr int kRowChunks = Cfg::kDqk * sizeof(T) / 16;  // 16-byte pieces of a token's row
    constexpr int kBoxChunks = hopper::kSwizzleRowBytes / 16;
    const T* cache = static_cast<const T*>(p.kv_cache) + kv_head * p.kv_head_stride;
    for (int32_t k = seg.page_begin; k < seg.page_end; ++k) {
      const int32_t first = k * kBlockTokens;
      const int32_t tokens = min(seg.seqlen - first, kBlockTokens);
      const int32_t id_lo = lane < tokens ? table_row[(first + lane) / p.page_size] : 0;
      const int32_t id_hi =
          lane + kWarpSize < tokens ? table_row[(first + lane + kWarpSize) / p.page_size] : 0;
      if (lane == 0) wait_free(stage);
      __syncwarp();
      uint8_t* stage_base = reinterpret_cast<uint8_t*>(smem.kv[stage.index][0]);
      if constexpr (Cfg::kFp8) {  // byte strides; a token is 1 or 2 copies per lane (fp8_load.cuh)
        const uint8_t* bytes = static_cast<const uint8_t*>(p.kv_cache) + kv_head * p.kv_head_stride;
        const uint32_t stage_address = hopper::smem_address(stage_base);
        const uint32_t staging_address = hopper::smem_address(Fp8::staging(smem, stage.index));
#pragma unroll 1
        for (int32_t i = 0; i < tokens; ++i) {
          const int32_t page = __shfl_sync(kFullWarpMask, i < kWarpSize ? id_lo : id_hi, i % kWarpSize);
          Fp8::gather_row(staging_address, stage_address,
                          bytes + page * p.kv_page_stride + ((first + i) % p.page_size) * p.kv_token_stride,
                          i, lane);
        }
      }
      for (int32_t i = 0; i < (Cfg::kFp8 ? 0 : tokens); ++i) {
        const int32_t page = __shfl_sync(kFullWarpMask, i < kWarpSize ? id_lo : id_hi, i % kWarpSize);
        const T* row = cache + page * p.kv_page_stride + ((first + i) % p.page_size) * p.kv_token_stride;
        uint8_t* dst_row = stage_base + i * hopper::kSwizzleRowBytes;
#pragma unroll 1
        for (int c = lane; c < kRowChunks; c += kWarpSize) {
          const int box = c / kBoxChunks, chunk = c % kBoxChunks;
          hopper::cp_async_16(dst_row + box * Cfg::kBoxBytes + ((chunk ^ (i % 8)) * 16),
                              row + box * Cfg::kBoxCols + chunk * (16 / sizeof(T)));
        }
      }
      hopper::cp_async_wait_all();
      hopper::fence_proxy_async_smem();
      __syncwarp();
      if constexpr (Cfg::kFp8)
        Fp8::gather_done(smem, stage.index, lane);  // every lane: the converters read the copies generically
      else if (lane == 0)
        hopper::mbarrier_arrive(&smem.full[stage.index]);
      stage.advance();
    }
  }
};

}  // namespace etap::decoding
