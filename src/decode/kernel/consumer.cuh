// Consumer warpgroups: the ETAP pipeline for one page —
//   Sᵀ[64 kv × N/2] = K[64 × 576] · Qᵀ      (this warpgroup's half of the query rows; wgmma M = kv). Below
//                                            N = 64 (Cfg::kScoresSplitD) each warpgroup computes all N
//                                            columns over half of d's k-steps and the two hand each other
//                                            the partial of the other's columns: K is read from shared
//                                            memory once per block, not once per warpgroup.
//   Pᵀ = column-wise online softmax of Sᵀ   (statistics across the M dimension)
//   Oᵀ[256 d × N] += Vᵀ[256 × 64] · Pᵀ      (this warpgroup's half of d_v; Vᵀ = the K tile read MN-major)
// and, once per segment, the epilogue that transposes Oᵀ back while storing O.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cmath>

#include "decode/kernel/barriers.hpp"
#include "decode/kernel/block_arrival.cuh"
#include "decode/kernel/cta_rows.cuh"
#include "decode/kernel/epilogue.cuh"
#include "decode/kernel/kv_scale.cuh"
#include "decode/kernel/schedule.cuh"
#include "decode/kernel/shared_storage.cuh"
#include "decode/kernel/softmax.cuh"
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
struct Consumer {
  using T = typename Cfg::Element;
  static constexpr int kN = Cfg::kN, kHalfN = Cfg::kHalfN;
  static constexpr int kSRegs = kHalfN / 2;  // Sᵀ fragment
  static constexpr int kFullRegs = kN / 2;   // a partial Sᵀ of all N columns (split d)
  static constexpr int kStepBytes = 16 * static_cast<int>(sizeof(T));  // Q or K bytes of one k16 step
  static constexpr int kORegs = kN / 2;                                // one m64 tile of Oᵀ
  static constexpr int kCols = kHalfN / 4;                             // Sᵀ columns per thread
  static constexpr int kWgThreads = Cfg::kWarpgroupThreads;

  const KernelParams& p;
  SharedStorage<Cfg>& smem;
  const int wg;  // consumer warpgroup: owns Sᵀ columns [wg·N/2, (wg+1)·N/2) and d_v rows [wg·256, +256)
  const int warp;  // within the warpgroup
  const int lane;
  const int col0;
  CtaRows<Cfg::kTiled> rows;         // this CTA's query rows (blockIdx.y's row tile; varlen: in each request)
  const FoldedScalesOf<Cfg> scales;  // FP8 only (empty for dense kernels: kv_scale.cuh)
  const BlockArrival<Cfg> arrival;

  float o[Cfg::kVTiles][kORegs];  // Oᵀ [4 tiles × 64 d] × N, fp32
  ColumnSoftmax<kHalfN> softmax;

  __device__ Consumer(const KernelParams& params, SharedStorage<Cfg>& storage, int warpgroup)
      : p(params),
        smem(storage),
        wg(warpgroup),
        warp((threadIdx.x % kWgThreads) / kWarpSize),
        lane(threadIdx.x % kWarpSize),
        col0(warpgroup * Cfg::kHalfN),
        rows(params),
        scales(folded_scales<Cfg>(params)),
        arrival(params, storage) {}

  __device__ void run() {
    zero_q_padding();
    hopper::PipelineState<Cfg::kStages> stage;
    uint32_t q_phase = 0, parity = 0;

    for_each_segment(p, blockIdx.x, [&](const Segment& seg) {
      if (!begin_segment(seg, q_phase)) return;
      reset_accumulators();

      int32_t limit[kCols];
      column_limits(seg, limit);
      const int32_t fully_visible_end = fully_visible_tokens(seg);

      for (int32_t k = seg.page_begin; k < seg.page_end; ++k) {
        float s[kSRegs];
        compute_scores(stage.index, stage.phase, s);  // waits for the block box by box
        if (k == seg.page_end - 1 && lane == 0) hopper::mbarrier_arrive(&smem.q_empty);
        scale_and_mask(s, k, limit, (k + 1) * Cfg::kPageTokens > fully_visible_end);
        float alpha[kCols];
        softmax.update(s, alpha, smem.column_partial[parity][wg],
                       barrier_id(NamedBarrier::kColumnMaxWritten, wg));
        timeline::probe(smem, timeline::Event::kSoftmaxDone);
        publish_p(s, alpha);
        timeline::probe(smem, timeline::Event::kPublished);
        if (k == seg.pages - 1 && seg.seqlen % Cfg::kPageTokens != 0)
          zero_v_tail<Cfg>(smem, stage.index, wg, seg.seqlen % Cfg::kPageTokens);
        rescale_o();
        accumulate_o(stage.index);
        if (lane == 0) hopper::mbarrier_arrive(&smem.empty[stage.index]);
        timeline::probe(smem, timeline::Event::kBlockEnd, k);
        stage.advance();
        parity ^= 1;
      }
      timeline::probe(smem, timeline::Event::kEpilogueBegin);
      store_segment<Cfg>(p, smem, rows, seg, o, softmax, smem.column_partial[parity][wg], wg, warp, lane,
                         out_scale<Cfg>(scales));
      timeline::probe(smem, timeline::Event::kEpilogueEnd);
    });
    timeline::probe(smem, timeline::Event::kExit);
  }

  // A segment's start, shared by the transposed consumers (Fp8Consumer too): false when this CTA computes
  // nothing for it — no query token of its tile (as the producer), or an empty request, whose zero output and
  // +inf lse it writes; otherwise it waits for the segment's Q.
  __device__ __forceinline__ bool begin_segment(const Segment& seg, uint32_t& q_phase) {
    if (!rows.enter(p, seg.request)) return false;
    if (seg.pages == 0) {
      write_empty_request<T>(p, rows, seg.request, wg * kWgThreads + warp * kWarpSize + lane,
                             Cfg::kConsumerThreads);
      return false;
    }
    timeline::probe(smem, timeline::Event::kSegmentBegin, seg.request);
    hopper::mbarrier_wait(&smem.q_full, q_phase);
    timeline::probe(smem, timeline::Event::kQLanded);
    q_phase ^= 1;
    return true;
  }

  // Last visible token of each of this thread's columns (causal: bottom-right aligned). Padding columns
  // see nothing (−1), so NaN slots past seqlen never reach them either.
  __device__ __forceinline__ void column_limits(const Segment& seg, int32_t (&limit)[kCols]) const {
#pragma unroll
    for (int c = 0; c < kCols; ++c) {
      const int col = col0 + slot_column(c, lane);
      limit[c] = rows.row(p, col) < 0 ? -1
                 : p.causal           ? seg.seqlen - rows.query_tokens(p) + rows.token(p, col)
                                      : seg.seqlen - 1;
    }
  }

  // Tokens [0, end) of the segment are visible to every column: blocks below it need no mask.
  __device__ __forceinline__ int32_t fully_visible_tokens(const Segment& seg) const {
    return (p.causal ? seg.seqlen - rows.query_tokens(p) + rows.first_token() : seg.seqlen - 1) + 1;
  }

  // The softmax statistics and the Oᵀ accumulators of a new segment.
  __device__ __forceinline__ void reset_accumulators() {
    softmax.reset();
#pragma unroll
    for (int t = 0; t < Cfg::kVTiles; ++t)
#pragma unroll
      for (int i = 0; i < kORegs; ++i) o[t][i] = 0.f;
  }

  // Columns past the Q box (tile rows, N) are computed but never stored; keeping them zero keeps them finite.
  // Each warpgroup zeroes its own columns; with Sᵀ split over d both read all of them.
  __device__ void zero_q_padding() {
    const int first = max(p.tiling.tile_rows(), col0), count = col0 + kHalfN - first;
    if (count > 0)
      zero_box_rows([&](int b) { return smem.q[b]; }, Cfg::kBoxes, first, count, threadIdx.x % kWgThreads,
                    kWgThreads);
    hopper::fence_proxy_async_smem();
    if constexpr (Cfg::kScoresSplitD)
      hopper::named_barrier_sync(barrier_id(NamedBarrier::kQPadZeroed), Cfg::kConsumerThreads);
    else
      hopper::named_barrier_sync(barrier_id(NamedBarrier::kQPadZeroed, wg), kWgThreads);
  }

  // Sᵀ = K · Qᵀ over d = 576: 36 k16 steps; box b of the page holds d ∈ [64b, 64b + 64), k-steps 4b .. 4b
  // + 3. Split d: warpgroup wg takes k-steps 2 wg, 2 wg + 1 of every box (both then follow the boxes in
  // landing order) for all N columns, then the exchange leaves its own N/2 columns in s. Otherwise: all 36
  // k-steps for its own N/2 columns.
  __device__ __forceinline__ void compute_scores(int stage, uint32_t phase, float (&s)[kSRegs]) {
    constexpr int kStepsPerBox = Cfg::kBoxCols / 16;
    constexpr int kWgSteps = Cfg::kScoresSplitD ? kStepsPerBox / Cfg::kConsumerWarpgroups : kStepsPerBox;
    constexpr int kScoreCols = Cfg::kScoresSplitD ? kN : kHalfN;
    float acc[kScoreCols / 2];
#pragma unroll
    for (int i = 0; i < kScoreCols / 2; ++i) acc[i] = 0.f;
    const int first_step = Cfg::kScoresSplitD ? wg * kWgSteps : 0;
    const T* q_rows = Cfg::kScoresSplitD ? smem.q[0] : smem.q[0] + col0 * Cfg::kBoxCols;
    arrival.wait_box(stage, phase, 0);
    timeline::probe(smem, timeline::Event::kBlockLanded);
    hopper::wgmma_fence();
#pragma unroll
    for (int box = 0; box < Cfg::kBoxes; ++box) {
      if (box > 0) {
        arrival.wait_box(stage, phase, box);
        // The wait's loop runs between wgmmas of one group: fence the registers, as ptxas would otherwise
        // inject for it (advisory C7519).
        hopper::wgmma_fence();
      }
      const uint64_t a_box = hopper::make_sw128_desc(smem.kv[stage][box]);
      const uint64_t b_box = hopper::make_sw128_desc(q_rows + box * (kN * Cfg::kBoxCols));
#pragma unroll
      for (int j = 0; j < kWgSteps; ++j) {
        const int k_bytes = (first_step + j) * kStepBytes;
        hopper::wgmma<kScoreCols, T, hopper::Major::kK, hopper::Major::kK>(
            acc, hopper::desc_advance(a_box, k_bytes), hopper::desc_advance(b_box, k_bytes),
            box > 0 || j > 0 ? 1 : 0);
      }
    }
    hopper::wgmma_commit();
    hopper::wgmma_wait<0>();
    hopper::fence_accumulator(acc);
    timeline::probe(smem, timeline::Event::kScoresDone);
    if constexpr (Cfg::kScoresSplitD) {
      exchange_scores(acc, s);
      timeline::probe(smem, timeline::Event::kExchanged);
    } else {
#pragma unroll
      for (int i = 0; i < kSRegs; ++i) s[i] = acc[i];
    }
  }

  // Split d: registers [wg · kSRegs, +kSRegs) of the full fragment are this warpgroup's columns (8-column
  // groups of 4 registers); the other half goes to the other warpgroup's thread of the same index, which
  // adds it. One buffer suffices: a block's reads come before both warpgroups pass its kPFree, the next
  // block's writes after.
  __device__ __forceinline__ void exchange_scores(const float (&full)[kFullRegs], float (&s)[kSRegs]) {
    static_assert(kSRegs % 4 == 0, "the exchange moves float4s");
    const int thread = warp * kWarpSize + lane;
    const bool first = wg == 0;
#pragma unroll
    for (int v = 0; v < kSRegs / 4; ++v) {
      float x[4];
#pragma unroll
      for (int c = 0; c < 4; ++c) x[c] = first ? full[kSRegs + 4 * v + c] : full[4 * v + c];
      smem.exchange.half[1 - wg][v][thread] = make_float4(x[0], x[1], x[2], x[3]);
    }
    hopper::named_barrier_sync(barrier_id(NamedBarrier::kScoresExchanged), Cfg::kConsumerThreads);
#pragma unroll
    for (int v = 0; v < kSRegs / 4; ++v) {
      const float4 y = smem.exchange.half[wg][v][thread];
      const float other[4] = {y.x, y.y, y.z, y.w};
#pragma unroll
      for (int c = 0; c < 4; ++c)
        s[4 * v + c] = (first ? full[4 * v + c] : full[kSRegs + 4 * v + c]) + other[c];
    }
  }

  __device__ __forceinline__ void scale_and_mask(float (&s)[kSRegs], int32_t page,
                                                 const int32_t (&limit)[kCols], bool needs_mask) {
    if (needs_mask) {
#pragma unroll
      for (int i = 0; i < kSRegs; ++i) {
        const int32_t token =
            page * Cfg::kPageTokens + hopper::accumulator_coord(threadIdx.x % kWgThreads, i).row;
        // Select, not multiply: slots past seqlen may hold NaN.
        s[i] = token <= limit[column_slot(i)] ? s[i] * logit_scale<Cfg>(p, scales) : -INFINITY;
      }
    } else {
#pragma unroll
      for (int i = 0; i < kSRegs; ++i) s[i] *= logit_scale<Cfg>(p, scales);
    }
  }

  // Pᵀ (this warpgroup's columns) and alpha into smem for both warpgroups' Oᵀ wgmma.
  __device__ __forceinline__ void publish_p(const float (&pv)[kSRegs], const float (&alpha)[kCols]) {
    hopper::named_barrier_sync(barrier_id(NamedBarrier::kPFree), Cfg::kConsumerThreads);
    auto* base = reinterpret_cast<uint8_t*>(smem.p);
#pragma unroll
    for (int i = 0; i < kSRegs; ++i) {
      const auto rc = hopper::accumulator_coord(threadIdx.x % kWgThreads, i);  // row = kv, col = query row
      *reinterpret_cast<T*>(base + hopper::sw128_offset(col0 + rc.col, rc.row)) = static_cast<T>(pv[i]);
    }
    if (warp == 0 && lane < 4) {
#pragma unroll
      for (int c = 0; c < kCols; ++c) smem.alpha[col0 + slot_column(c, lane)] = alpha[c];
    }
    hopper::fence_proxy_async_smem();
    hopper::named_barrier_sync(barrier_id(NamedBarrier::kPReady), Cfg::kConsumerThreads);
  }

  __device__ __forceinline__ void rescale_o() {
#pragma unroll
    for (int j = 0; j < kN / 8; ++j) {
      const float2 a = *reinterpret_cast<const float2*>(&smem.alpha[8 * j + 2 * (lane % 4)]);
#pragma unroll
      for (int t = 0; t < Cfg::kVTiles; ++t) {
        o[t][4 * j + 0] *= a.x;
        o[t][4 * j + 1] *= a.y;
        o[t][4 * j + 2] *= a.x;
        o[t][4 * j + 3] *= a.y;
      }
    }
  }

  // Oᵀ += Vᵀ · Pᵀ: A = V box read MN-major (d contiguous), 16 kv rows (2 swizzle atoms) per k step.
  __device__ __forceinline__ void accumulate_o(int stage) {
    hopper::wgmma_fence();
#pragma unroll
    for (int t = 0; t < Cfg::kVTiles; ++t) {
      const uint64_t a = hopper::make_sw128_desc(smem.kv[stage][wg * Cfg::kVTiles + t]);
      const uint64_t b = hopper::make_sw128_desc(smem.p);
#pragma unroll
      for (int ks = 0; ks < Cfg::kPvSteps; ++ks) {
        hopper::wgmma<kN, T, hopper::Major::kMN, hopper::Major::kK>(
            o[t], hopper::desc_advance(a, ks * 16 * hopper::kSwizzleRowBytes),
            hopper::desc_advance(b, ks * 32), 1);
      }
    }
    hopper::wgmma_commit();
    hopper::wgmma_wait<0>();
#pragma unroll
    for (int t = 0; t < Cfg::kVTiles; ++t) hopper::fence_accumulator(o[t]);
  }
};

}  // namespace etap::decoding
