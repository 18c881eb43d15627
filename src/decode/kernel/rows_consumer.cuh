// Consumer warpgroups of the rows-on-M kernel, for full row tiles (kRowsKernelMinTileRows,
// kernel_choice.hpp): the 64 query rows of a tile sit on wgmma's M, FlashMLA's layout, instead of on N as in
// the ETAP consumer.
//   S[64 rows × 64 kv] = Q[64 × d_qk] · Kᵀ      (warpgroup 0, the score warpgroup: SS, 36 m64n64k16 at 576)
//   P = row-wise online softmax of S            (a row lives in the 4 lanes of a quad: two shuffles, no smem)
//   O[64 × d_v/2] += P · V[64 kv × d_v/2]       (each warpgroup its half of d_v: m64n256k16 at d_v = 512;
//                                                warpgroup 0 takes P from registers, warpgroup 1 from smem)
// Overlap: warpgroup 1's O runs beside warpgroup 0's, and the producer loads block k + 1 during block k;
// warpgroup 0 releases a stage as soon as its O of the block is done, then waits for the next block.
// docs/DESIGN.md has the per-block budget.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cmath>

#include "decode/kernel/barriers.hpp"
#include "decode/kernel/block_arrival.cuh"
#include "decode/kernel/cta_rows.cuh"
#include "decode/kernel/epilogue.cuh"
#include "decode/kernel/rows_epilogue.cuh"
#include "decode/kernel/schedule.cuh"
#include "decode/kernel/shared_storage.cuh"
#include "decode/kernel/tail.cuh"
#include "decode/kernel/timeline.cuh"
#include "decode/kernel/zero_rows.cuh"
#include "hopper/barrier.cuh"
#include "hopper/fence.cuh"
#include "hopper/pipeline.cuh"
#include "hopper/smem_desc.cuh"
#include "hopper/wgmma.cuh"

namespace etap::decoding {

template <class Cfg>
struct RowsConsumer {
  using T = typename Cfg::Element;
  static_assert(Cfg::kN == kMaxTileRows, "the rows-on-M kernel computes a whole 64-row tile (wgmma M)");
  static constexpr int kSRegs = Cfg::kPageTokens / 2;          // S fragment: m64n64
  static constexpr int kOCols = Cfg::kVTiles * Cfg::kBoxCols;  // O columns of a warpgroup: 256 or 128
  static constexpr int kORegs = kOCols / 2;                    // its fp32 fragment
  static constexpr int kPvSteps = Cfg::kPvSteps;               // k16 steps of O += P·V (64 kv)
  static constexpr int kWgThreads = Cfg::kWarpgroupThreads;
  static constexpr int kScoreWarpgroup = 0;                               // computes S and the softmax
  static constexpr uint32_t kVStepBytes = 16 * hopper::kSwizzleRowBytes;  // 16 kv rows of a V box

  const KernelParams& p;
  SharedStorage<Cfg>& smem;
  const int wg;    // consumer warpgroup: owns O columns [wg · kOCols, (wg + 1) · kOCols)
  const int warp;  // within the warpgroup
  const int lane;
  const int thread;  // within the warpgroup
  const CtaRows<Cfg::kTiled> rows;
  const BlockArrival<Cfg> arrival;

  float o[kORegs];  // O [64 rows × kOCols], fp32

  __device__ RowsConsumer(const KernelParams& params, SharedStorage<Cfg>& storage, int warpgroup)
      : p(params),
        smem(storage),
        // Broadcast from lane 0 so that ptxas sees a warp-uniform value: the warpgroups branch on it around
        // their wgmmas, and a branch it takes for divergent serialises them.
        wg(__shfl_sync(kFullWarpMask, warpgroup, 0)),
        warp((threadIdx.x % kWgThreads) / kWarpSize),
        lane(threadIdx.x % kWarpSize),
        thread(threadIdx.x % kWgThreads),
        rows(params),
        arrival(params, storage) {}

  // The two tile rows of this thread in every m64 fragment: r and r + 8.
  __device__ __forceinline__ int fragment_row(int half) const { return 16 * warp + lane / 4 + 8 * half; }

  __device__ void run() {
    zero_q_padding();
    hopper::PipelineState<Cfg::kStages> stage;
    uint32_t q_phase = 0;
    for_each_segment(p, blockIdx.x, [&](const Segment& seg) {
      if (seg.pages == 0) {
        write_empty_request<T>(p, rows, seg.request, wg * kWgThreads + thread, Cfg::kConsumerThreads);
        return;
      }
#pragma unroll
      for (int i = 0; i < kORegs; ++i) o[i] = 0.f;
      hopper::fence_accumulator(o);  // zeroed here, not sunk into the first S wgmma's pipeline stage
      RowStats stats;
      timeline::probe(smem, timeline::Event::kSegmentBegin, seg.request);
      if (wg == kScoreWarpgroup) {
        hopper::mbarrier_wait(&smem.q_full, q_phase);
        timeline::probe(smem, timeline::Event::kQLanded);
        q_phase ^= 1;
        score_blocks(seg, stage, stats);
      } else {
        value_blocks(seg, stage);
      }
      timeline::probe(smem, timeline::Event::kEpilogueBegin);
      store_rows_segment<Cfg>(p, smem, rows, seg, o, stats, wg == kScoreWarpgroup, wg, warp, lane);
      timeline::probe(smem, timeline::Event::kEpilogueEnd);
    });
    timeline::probe(smem, timeline::Event::kExit);
  }

  // Rows past the tile (tile rows < 64) are computed but never stored; keeping their Q zero keeps them
  // finite.
  __device__ void zero_q_padding() {
    const int first = p.tiling.tile_rows();
    if (first < Cfg::kN)
      zero_box_rows([&](int b) { return smem.q[b]; }, Cfg::kBoxes, first, Cfg::kN - first,
                    wg * kWgThreads + thread, Cfg::kConsumerThreads);
    hopper::fence_proxy_async_smem();
    hopper::named_barrier_sync(barrier_id(NamedBarrier::kQPadZeroed), Cfg::kConsumerThreads);
  }

  // ---- warpgroup 0: S, softmax, its half of O, P for warpgroup 1 ----------------------------------------

  __device__ void score_blocks(const Segment& seg, hopper::PipelineState<Cfg::kStages>& stage,
                               RowStats& stats) {
    // Last visible token of this thread's two rows (causal: bottom-right aligned); rows past the tile see
    // nothing, so NaN slots past seqlen never reach them either.
    int32_t limit[2];
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int r = fragment_row(h);
      limit[h] = rows.row(p, r) < 0 ? -1 : p.causal ? seg.seqlen - p.s_q + rows.token(p, r) : seg.seqlen - 1;
    }
    const int32_t fully_visible_end =
        (p.causal ? seg.seqlen - p.s_q + rows.first_token() : seg.seqlen - 1) + 1;

    // Per block: softmax of S(k), both warpgroups' O(k) (warpgroup 1's from the published P), stage k
    // released as soon as warpgroup 0's O(k) is done, so that the producer keeps two blocks in flight, then
    // S(k + 1). Issuing S(k + 1) ahead of O(k) when block k + 1 had already landed (a vote per block)
    // measured slower at every R ≥ 64 row (2026-12-03 run 4, docs/PERF.md): it held stage k longer.
    float s[kSRegs];
    issue_scores(stage.index, stage.phase, s);  // waits for the block
    hopper::wgmma_wait<0>();
    hopper::fence_accumulator(s);
    for (int32_t k = seg.page_begin; k < seg.page_end; ++k) {
      if (k == seg.page_end - 1 && lane == 0) {
        // Warpgroup 1 never reads Q: warpgroup 0 arrives for the whole CTA's count.
        hopper::mbarrier_arrive(&smem.q_empty);
        hopper::mbarrier_arrive(&smem.q_empty);
      }
      float x[kSRegs];  // the scores, then P: kept out of the accumulator registers
#pragma unroll
      for (int i = 0; i < kSRegs; ++i) x[i] = s[i];
      scale_and_mask(x, k, limit, (k + 1) * Cfg::kPageTokens > fully_visible_end);
      float alpha[2];
      stats.update(x, alpha);
      uint32_t pa[kPvSteps][4];
#pragma unroll
      for (int ks = 0; ks < kPvSteps; ++ks) hopper::pack_fragment<T>(x, ks, pa[ks]);
      // The tail block: warpgroup 0 zeroes the V rows past seqlen in both warpgroups' boxes and publishes P
      // before its own O, so that kPReady (both warpgroups, after the fence in publish_p) orders the zeroing
      // before either O wgmma. A per-warpgroup barrier here, passed by each warpgroup at a different point,
      // made racecheck report the alpha handoff (2026-12-03, docs/PERF.md), as the vote barrier did.
      const bool tail = k == seg.pages - 1 && seg.seqlen % Cfg::kPageTokens != 0;
      if (tail) {
        // All kVBoxes boxes: its S of the block has waited for every box to land.
        zero_v_tail_boxes(smem, stage.index, 0, Cfg::kVBoxes, seg.seqlen % Cfg::kPageTokens, thread,
                          kWgThreads);
        publish_p(pa, alpha);
      }
      rescale(alpha);
      issue_values(stage.index, pa);
      if (!tail) publish_p(pa, alpha);
      hopper::wgmma_wait<0>();
      hopper::fence_accumulator(o);
      if (lane == 0) hopper::mbarrier_arrive(&smem.empty[stage.index]);
      timeline::probe(smem, timeline::Event::kBlockEnd, k);
      stage.advance();
      if (k + 1 < seg.page_end) {
        issue_scores(stage.index, stage.phase, s);
        hopper::wgmma_wait<0>();
        hopper::fence_accumulator(s);
      }
    }
  }

  // S = Q · Kᵀ: A = Q box (64 rows, K-major), B = K box (64 kv, K-major); box b holds d ∈ [64b, 64b + 64).
  __device__ __forceinline__ void issue_scores(int stage, uint32_t phase, float (&s)[kSRegs]) {
    // Defined before the first wgmma (which overwrites them: scale_d = 0), so that ptxas never moves
    // undefined accumulators between the copies of this sequence.
#pragma unroll
    for (int i = 0; i < kSRegs; ++i) s[i] = 0.f;
    // Two base descriptors, each step an immediate offset from them. Laundered so that the compiler keeps
    // no per-step descriptor live across blocks (36 of them for Q would be 72 registers).
    uint64_t q_desc = hopper::make_sw128_desc(smem.q[0]);
    uint64_t k_desc = hopper::make_sw128_desc(smem.kv[stage][0]);
    asm volatile("" : "+l"(q_desc), "+l"(k_desc));
    // The whole block before the first wgmma: waiting box by box inside this sequence measured 5% slower
    // at b=16 8K h_q 64 (docs/PERF.md, 2026-12-02c run 4).
    arrival.wait_boxes(stage, phase, 0, Cfg::kBoxes);
    timeline::probe(smem, timeline::Event::kBlockLanded);
    hopper::fence_accumulator(s);  // the compiler may not sink register writes below wgmma.fence
    hopper::wgmma_fence();
#pragma unroll
    for (int ks = 0; ks < Cfg::kQkSteps; ++ks) {
      const uint32_t offset = (ks / 4) * Cfg::kBoxBytes + (ks % 4) * 32;  // box, then 16 columns of it
      hopper::wgmma<Cfg::kPageTokens, T, hopper::Major::kK, hopper::Major::kK>(
          s, hopper::desc_advance(q_desc, offset), hopper::desc_advance(k_desc, offset), ks > 0 ? 1 : 0);
    }
    hopper::wgmma_commit();
  }

  __device__ __forceinline__ void scale_and_mask(float (&s)[kSRegs], int32_t page, const int32_t (&limit)[2],
                                                 bool needs_mask) {
    if (needs_mask) {
#pragma unroll
      for (int i = 0; i < kSRegs; ++i) {
        const int32_t token = page * Cfg::kPageTokens + hopper::accumulator_coord(thread, i).col;
        // Select, not multiply: slots past seqlen may hold NaN.
        s[i] = token <= limit[(i / 2) % 2] ? s[i] * p.scale_log2 : -INFINITY;
      }
    } else {
#pragma unroll
      for (int i = 0; i < kSRegs; ++i) s[i] *= p.scale_log2;
    }
  }

  // P (bf16/fp16, the A operand of warpgroup 1's O wgmma: [64 rows × 64 kv], K-major, 128B-swizzled) and
  // alpha into smem, once warpgroup 1 has finished reading the previous ones.
  __device__ __forceinline__ void publish_p(const uint32_t (&pa)[kPvSteps][4], const float (&alpha)[2]) {
    hopper::named_barrier_sync(barrier_id(NamedBarrier::kPFree), Cfg::kConsumerThreads);
    auto* base = reinterpret_cast<uint8_t*>(smem.p);
#pragma unroll
    for (int ks = 0; ks < kPvSteps; ++ks)
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const int row = fragment_row(j % 2), col = 16 * ks + 8 * (j / 2) + 2 * (lane % 4);
        *reinterpret_cast<uint32_t*>(base + hopper::sw128_offset(row, col)) = pa[ks][j];
      }
    if (lane % 4 == 0) {
      smem.alpha[fragment_row(0)] = alpha[0];
      smem.alpha[fragment_row(1)] = alpha[1];
    }
    hopper::fence_proxy_async_smem();
    // Both warpgroups sync (not arrive) on kPReady and kPFree, as in the transposed consumer: every handoff
    // of P and alpha is then a full barrier between the writers and the readers.
    hopper::named_barrier_sync(barrier_id(NamedBarrier::kPReady), Cfg::kConsumerThreads);
  }

  // ---- warpgroup 1: its half of O from the published P ----------------------------------------------------

  __device__ void value_blocks(const Segment& seg, hopper::PipelineState<Cfg::kStages>& stage) {
    const uint64_t p_desc = hopper::make_sw128_desc(smem.p);
    hopper::named_barrier_sync(barrier_id(NamedBarrier::kPFree), Cfg::kConsumerThreads);
    for (int32_t k = seg.page_begin; k < seg.page_end; ++k) {
      arrival.wait_boxes(stage.index, stage.phase, wg * Cfg::kVTiles, Cfg::kVTiles);  // this thread's V
      timeline::probe(smem, timeline::Event::kBlockLanded, k);
      hopper::named_barrier_sync(barrier_id(NamedBarrier::kPReady), Cfg::kConsumerThreads);
      // In the tail block warpgroup 0 has also zeroed this warpgroup's V rows past seqlen before kPReady.
      const float alpha[2] = {smem.alpha[fragment_row(0)], smem.alpha[fragment_row(1)]};
      rescale(alpha);
      hopper::wgmma_fence();
      const uint64_t v = v_desc(stage.index);
#pragma unroll
      for (int ks = 0; ks < kPvSteps; ++ks)
        hopper::wgmma<kOCols, T, hopper::Major::kK, hopper::Major::kMN>(
            o, hopper::desc_advance(p_desc, ks * 32), hopper::desc_advance(v, ks * kVStepBytes), 1);
      hopper::wgmma_commit();
      hopper::wgmma_wait<0>();
      hopper::fence_accumulator(o);
      // The stage first, so that the producer's next load does not wait for warpgroup 0's next publish.
      if (lane == 0) hopper::mbarrier_arrive(&smem.empty[stage.index]);
      timeline::probe(smem, timeline::Event::kBlockEnd, k);
      if (k + 1 < seg.page_end)
        hopper::named_barrier_sync(barrier_id(NamedBarrier::kPFree), Cfg::kConsumerThreads);
      stage.advance();
    }
  }

  // ---- both warpgroups ---------------------------------------------------------------------------------

  // V of this warpgroup: kVTiles boxes of the block (d contiguous: MN-major), one 64-column atom per box.
  __device__ __forceinline__ uint64_t v_desc(int stage) const {
    return hopper::make_sw128_mn_desc(smem.kv[stage][wg * Cfg::kVTiles], Cfg::kBoxBytes);
  }

  __device__ __forceinline__ void rescale(const float (&alpha)[2]) {
#pragma unroll
    for (int i = 0; i < kORegs; ++i) o[i] *= alpha[(i / 2) % 2];
    hopper::fence_accumulator(o);  // the compiler may not sink these below the next wgmma.fence
  }

  // Warpgroup 0's O += P · V with P from registers.
  __device__ __forceinline__ void issue_values(int stage, const uint32_t (&pa)[kPvSteps][4]) {
    hopper::wgmma_fence();
    const uint64_t v = v_desc(stage);
#pragma unroll
    for (int ks = 0; ks < kPvSteps; ++ks)
      hopper::wgmma_rs<kOCols, T, hopper::Major::kMN>(o, pa[ks], hopper::desc_advance(v, ks * kVStepBytes),
                                                      1);
    hopper::wgmma_commit();
  }
};

}  // namespace etap::decoding
