// The register-operand FP8 consumer (per-tensor e4m3, Cfg::kRegisterFp8; bench/experiments/
// fp8_critical_path.md 2(d)): the ring holds only the e4m3 blocks the producer's TMA loads, and both wgmmas
// take their A operand from registers built from those bytes (fp8_fragments.cuh), so no block is ever
// dequantised into shared memory. Per block, the two consumer warpgroups:
//   Sᵀ: split d, not the query rows — warpgroup wg computes the partial Sᵀ[64 kv × N] over d ∈
//     [288 wg, +288) (18 k-steps: boxes 5wg .. 5wg + 3 and half of box 4; K converted once per block), hands
//     the other warpgroup its N/2 columns (smem.exchange) and adds the other's partial of its own columns.
//   softmax, Pᵀ, rescale: as Consumer, on the warpgroup's N/2 columns; Pᵀ is stored in the kv order of the
//     V fragments (tau_inverse).
//   Oᵀ: Vᵀ fragments of the warpgroup's d half, channels permuted by sigma (the epilogue maps them back).
// Q is permuted once per segment by pi in shared memory (permute_q), the sum over d being invariant under a
// permutation of both operands. The per-tensor scale is folded into the logits and O (kv_scale.cuh).
// V slots past seqlen in the tail block are zeroed in the e4m3 box (fp16 converts NaN codes to NaN).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "decode/kernel/barriers.hpp"
#include "decode/kernel/consumer.cuh"
#include "decode/kernel/fp8_fragment_maps.hpp"
#include "decode/kernel/fp8_fragments.cuh"
#include "hopper/barrier.cuh"
#include "hopper/fence.cuh"
#include "hopper/pipeline.cuh"
#include "hopper/smem_desc.cuh"
#include "hopper/wgmma.cuh"

namespace etap::decoding {

template <class Cfg>
struct Fp8Consumer : Consumer<Cfg> {
  using Base = Consumer<Cfg>;
  using T = typename Cfg::Element;
  using Base::arrival;
  using Base::col0;
  using Base::lane;
  using Base::o;
  using Base::p;
  using Base::rows;
  using Base::scales;
  using Base::smem;
  using Base::softmax;
  using Base::warp;
  using Base::wg;

  static constexpr int kN = Cfg::kN, kHalfN = Cfg::kHalfN;
  static constexpr int kFullRegs = Base::kFullRegs;  // the partial Sᵀ over all N columns
  static constexpr int kSRegs = Base::kSRegs;        // this warpgroup's N/2 columns (Consumer's layout)
  static constexpr int kCols = Base::kCols;          // Sᵀ columns per thread
  static constexpr int kWgThreads = Cfg::kWarpgroupThreads;
  static constexpr int kBoxBytes = static_cast<int>(Cfg::kFp8BoxBytes);
  static constexpr int kRowBytes = kFp8RowBytes;
  static constexpr int kSplitBox = 4;   // box 4 holds k-steps 16..19: 16, 17 for wg 0, 18, 19 for wg 1
  static constexpr int kFullBoxes = 4;  // whole boxes per warpgroup: 0..3, or 5..8
  static constexpr int kStepBytes = Base::kStepBytes;  // Q bytes of one k-step (16 columns of bf16/fp16)
  // Sᵀ split over d (the exchange) below N = 64. At N = 64 the N-column partial (32 registers) next to o
  // (128) spills (ptxas -v: 20-24 bytes, also with half-box fragment sets), so there each warpgroup computes
  // its own N/2 columns over all of d, as Consumer does, and converts all of K itself.
  static constexpr bool kSplitD = Cfg::kFp8SplitD;
  static_assert(Cfg::kRegisterFp8 && Cfg::kBoxes == 2 * kFullBoxes + 1 && Cfg::kVTiles == 4);
  static_assert(Cfg::kConsumerWarpgroups == 2 && kWgThreads == 128);

  __device__ Fp8Consumer(const KernelParams& params, SharedStorage<Cfg>& storage, int warpgroup)
      : Base(params, storage, warpgroup) {}

  __device__ void run() {
    Base::zero_q_padding();
    // Each warpgroup zeroes its own columns; permute_q reads all of them (split d: zero_q_padding synced
    // both).
    if constexpr (!Cfg::kScoresSplitD)
      hopper::named_barrier_sync(barrier_id(NamedBarrier::kQPermuted), Cfg::kConsumerThreads);
    hopper::PipelineState<Cfg::kStages> stage;
    uint32_t q_phase = 0, parity = 0;

    for_each_segment(p, blockIdx.x, [&](const Segment& seg) {
      if (!Base::begin_segment(seg, q_phase)) return;
      permute_q();
      Base::reset_accumulators();

      int32_t limit[kCols];
      Base::column_limits(seg, limit);
      const int32_t fully_visible_end = Base::fully_visible_tokens(seg);

      for (int32_t k = seg.page_begin; k < seg.page_end; ++k) {
        float s[kSRegs];
        compute_scores(stage.index, stage.phase, s);  // waits for the block box by box
        if (k == seg.page_end - 1 && lane == 0) hopper::mbarrier_arrive(&smem.q_empty);
        Base::scale_and_mask(s, k, limit, (k + 1) * Cfg::kPageTokens > fully_visible_end);
        float alpha[kCols];
        softmax.update(s, alpha, smem.column_partial[parity][wg],
                       barrier_id(NamedBarrier::kColumnMaxWritten, wg));
        publish_p(s, alpha);
        if (k == seg.pages - 1 && seg.seqlen % Cfg::kPageTokens != 0)
          zero_v_tail(stage.index, seg.seqlen % Cfg::kPageTokens);
        Base::rescale_o();
        accumulate_o(stage.index);
        if (lane == 0) hopper::mbarrier_arrive(&smem.empty[stage.index]);
        timeline::probe(smem, timeline::Event::kBlockEnd, k);
        stage.advance();
        parity ^= 1;
      }
      timeline::probe(smem, timeline::Event::kEpilogueBegin);
      store_segment<Cfg, true>(p, smem, rows, seg, o, softmax, smem.column_partial[parity][wg], wg, warp,
                               lane, out_scale<Cfg>(scales));
      timeline::probe(smem, timeline::Event::kEpilogueEnd);
    });
    timeline::probe(smem, timeline::Event::kExit);
  }

  // Q[n][l] ← Q[n][pi(l)] in every box (fp8_fragment_maps.hpp), once the segment's Q landed. A unit is the
  // 16 elements [16q, +16) of one row of one box: all of them land in the same row, so a batch of whole
  // rows is read, synced, then written; batches touch disjoint rows. Then fenced for wgmma.
  __device__ void permute_q() {
    constexpr int kUnits = Cfg::kBoxes * kN * 4, kThreads = Cfg::kConsumerThreads;
    static_assert(kThreads % 4 == 0, "a batch holds whole rows");
    const int thread = wg * kWgThreads + warp * kWarpSize + lane;
#pragma unroll 1
    for (int first = 0; first < kUnits; first += kThreads) {
      const int u = first + thread;
      const bool active = u < kUnits;
      const int box = u / (4 * kN), n = (u / 4) % kN, q = u % 4;
      uint8_t* q_box = reinterpret_cast<uint8_t*>(smem.q[active ? box : 0]);
      uint4 c0 = make_uint4(0, 0, 0, 0), c1 = c0;
      if (active) {
        c0 = *reinterpret_cast<const uint4*>(q_box + hopper::sw128_offset(n, 16 * q));
        c1 = *reinterpret_cast<const uint4*>(q_box + hopper::sw128_offset(n, 16 * q + 8));
      }
      hopper::named_barrier_sync(barrier_id(NamedBarrier::kQPermuted), kThreads);
      if (active) {
        // Word m holds physical elements 16q + 2m, + 1 = pi(l) for l = 16 (m / 2) + 2q + 8 (m % 2), + 1.
        const uint32_t w[8] = {c0.x, c0.y, c0.z, c0.w, c1.x, c1.y, c1.z, c1.w};
#pragma unroll
        for (int m = 0; m < 8; ++m)
          *reinterpret_cast<uint32_t*>(q_box + hopper::sw128_offset(n, 16 * (m / 2) + 2 * q + 8 * (m % 2))) =
              w[m];
      }
    }
    hopper::fence_proxy_async_smem();
    hopper::named_barrier_sync(barrier_id(NamedBarrier::kQPermuted), kThreads);
  }

  // Sᵀ of this warpgroup's N/2 columns into s (Consumer's layout), waiting for the block box by box.
  __device__ __forceinline__ void compute_scores(int stage, uint32_t phase, float (&s)[kSRegs]) {
    const int g = lane / 4, q = lane % 4;
    const uint8_t* block = reinterpret_cast<const uint8_t*>(smem.kv[stage][0]);
    const uint8_t* row_g = block + (16 * warp + g) * kRowBytes + 16 * q;  // box 0; + box · kBoxBytes
    if constexpr (kSplitD) {
      // The partial over this warpgroup's 18 k-steps for all N columns: boxes 5 wg .. 5 wg + 3, then bytes
      // [16q + 8 wg, +8) of box 4 (k-steps 2 wg, 2 wg + 1 of it); then the exchange.
      float full[kFullRegs];
#pragma unroll
      for (int i = 0; i < kFullRegs; ++i) full[i] = 0.f;  // overwritten by the first wgmma (scale_d 0)
      const int first_box = wg == 0 ? 0 : kSplitBox + 1;
      arrival.wait_box(stage, phase, first_box, first_box);
      timeline::probe(smem, timeline::Event::kBlockLanded);
#pragma unroll
      for (int b = 0; b < kFullBoxes; ++b) {
        if (b > 0) arrival.wait_box(stage, phase, first_box + b, first_box);
        box_scores<kN, 4>(full, row_g, first_box + b, 0, 0, b > 0);
      }
      arrival.wait_box(stage, phase, kSplitBox, first_box);
      box_scores<kN, 2>(full, row_g, kSplitBox, 8 * wg, 2 * wg, true);
      hopper::wgmma_wait<0>();
      hopper::fence_accumulator(full);
      Base::exchange_scores(full, s);
    } else {
#pragma unroll
      for (int i = 0; i < kSRegs; ++i) s[i] = 0.f;
      arrival.wait_box(stage, phase, 0);
      timeline::probe(smem, timeline::Event::kBlockLanded);
#pragma unroll
      for (int box = 0; box < Cfg::kBoxes; ++box) {
        if (box > 0) arrival.wait_box(stage, phase, box);
        box_scores<kHalfN, 4>(s, row_g, box, 0, 0, box > 0);
      }
      hopper::wgmma_wait<0>();
      hopper::fence_accumulator(s);
    }
  }

  // kSteps k-steps of box `box` from k-step `first_step` of it (its bytes from 4 · first_step = `byte`): the
  // fragments, then one commit group of wgmmas over kCols_ columns of Q (all N, or this warpgroup's N/2),
  // then a wait for the previous group, whose fragments are then free. accumulate = false: the first.
  template <int kCols_, int kSteps>
  __device__ __forceinline__ void box_scores(float (&d)[kCols_ / 2], const uint8_t* row_g, int box, int byte,
                                             int first_step, bool accumulate) {
    KFragments<T, kSteps> k;
    k.load(row_g + box * kBoxBytes + byte);
    // The fragments (and, before the first group, the accumulators) are written: fence them for wgmma.
    hopper::wgmma_fence();
    const T* q_rows = smem.q[box] + (kCols_ == kN ? 0 : col0 * Cfg::kBoxCols);
    const uint64_t desc = hopper::make_sw128_desc(q_rows);
#pragma unroll
    for (int j = 0; j < kSteps; ++j)
      hopper::wgmma_rs<kCols_, T, hopper::Major::kK>(
          d, k.a[j], hopper::desc_advance(desc, (first_step + j) * kStepBytes), accumulate || j > 0 ? 1 : 0);
    hopper::wgmma_commit();
    hopper::wgmma_wait<1>();
  }

  // Pᵀ (this warpgroup's columns) and alpha into smem, as Consumer::publish_p, at logical kv
  // tau_inverse(token): the order of the V fragments' k.
  __device__ __forceinline__ void publish_p(const float (&pv)[kSRegs], const float (&alpha)[kCols]) {
    hopper::named_barrier_sync(barrier_id(NamedBarrier::kPFree), Cfg::kConsumerThreads);
    auto* base = reinterpret_cast<uint8_t*>(smem.p);
#pragma unroll
    for (int i = 0; i < kSRegs; ++i) {
      const auto rc = hopper::accumulator_coord(threadIdx.x % kWgThreads, i);  // row = token, col = query row
      *reinterpret_cast<T*>(base + hopper::sw128_offset(col0 + rc.col, fp8_fragments::tau_inverse(rc.row))) =
          static_cast<T>(pv[i]);
    }
    if (warp == 0 && lane < 4) {
#pragma unroll
      for (int c = 0; c < kCols; ++c) smem.alpha[col0 + slot_column(c, lane)] = alpha[c];
    }
    hopper::fence_proxy_async_smem();
    hopper::named_barrier_sync(barrier_id(NamedBarrier::kPReady), Cfg::kConsumerThreads);
  }

  // The tail block: zero the e4m3 codes of tokens [valid, 64) in the one box this warp reads V from (box
  // 4 wg + warp). Both warpgroups' K reads of the stage ended before kScoresExchanged; the producer's next
  // TMA into the stage comes after `empty` (the proxy fence orders these generic writes before it).
  __device__ __forceinline__ void zero_v_tail(int stage, int valid) {
    constexpr int kPieces = kRowBytes / 16;
    uint8_t* box = reinterpret_cast<uint8_t*>(smem.kv[stage][0]) + (4 * wg + warp) * kBoxBytes;
    for (int idx = valid * kPieces + lane; idx < Cfg::kPageTokens * kPieces; idx += kWarpSize)
      *reinterpret_cast<uint4*>(box + idx * 16) = make_uint4(0, 0, 0, 0);
    hopper::fence_proxy_async_smem();
    __syncwarp();
  }

  // Oᵀ += Vᵀ · Pᵀ: per k-step, the 4 tiles' fragments from 4 tokens × 8 bytes, one k-step ahead.
  __device__ __forceinline__ void accumulate_o(int stage) {
    const int g = lane / 4, q = lane % 4;
    const uint8_t* channels = reinterpret_cast<const uint8_t*>(smem.kv[stage][0]) +
                              (4 * wg + warp) * kBoxBytes + q * kRowBytes + 8 * g;
    const uint64_t desc = hopper::make_sw128_desc(smem.p);
#pragma unroll
    for (int j = 0; j < Cfg::kPvSteps; ++j) {
      VFragments<T, Cfg::kVTiles> v;
      v.load(channels + 16 * j * kRowBytes);
      hopper::wgmma_fence();  // the fragments (and, before the first, the rescaled o) are written
#pragma unroll
      for (int t = 0; t < Cfg::kVTiles; ++t)
        hopper::wgmma_rs<kN, T, hopper::Major::kK>(o[t], v.a[t], hopper::desc_advance(desc, j * kStepBytes),
                                                   1);
      hopper::wgmma_commit();
      hopper::wgmma_wait<1>();
    }
    hopper::wgmma_wait<0>();
#pragma unroll
    for (int t = 0; t < Cfg::kVTiles; ++t) hopper::fence_accumulator(o[t]);
  }
};

}  // namespace etap::decoding
