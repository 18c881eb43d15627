// Benchmark baseline: FlashMLA's non-transposed layout on the same machinery (producer warp, TMA ring,
// shared-memory struct, plan, combine). The R query rows sit on wgmma's M, padded to 64:
//   S[64 q × 64 kv] = Q[64 × 576] · Kᵀ     (warpgroup 0; rows ≥ R are zero padding but still computed)
//   P = row-wise online softmax of S        (statistics within a warp: 4 lanes share a row)
//   O[64 q × 256 d] += P · V[64 kv × 256 d] (each warpgroup half of d_v; V read MN-major as B)
// The ratio ETAP / padded measures the transposition itself on the card it runs on.
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
#include "decode/kernel/tail.cuh"
#include "decode/kernel/zero_rows.cuh"
#include "hopper/barrier.cuh"
#include "hopper/fence.cuh"
#include "hopper/pipeline.cuh"
#include "hopper/smem_desc.cuh"
#include "hopper/wgmma.cuh"

namespace etap::bench::baseline {
using namespace etap::decoding;  // the baseline is written in the kernel's own vocabulary

template <class Cfg>
struct PaddedConsumer {
  using T = typename Cfg::Element;
  static_assert(Cfg::kN == 64, "the padded layout always uses M = 64 query rows");
  static constexpr int kRegs = 32;  // m64n64 fragment: 2 rows × 16 columns per thread
  static constexpr int kWgThreads = Cfg::kWarpgroupThreads;

  const KernelParams& p;
  SharedStorage<Cfg>& smem;
  const int wg, warp, lane, thread;

  float o[Cfg::kVTiles][kRegs];      // O [64 q × 4 tiles of 64 d]
  float row_max[2], row_sum[2];      // rows r and r + 8 of this thread (warpgroup 0 only)
  const FoldedScalesOf<Cfg> scales;  // FP8 only, as the product's consumer (kv_scale.cuh)

  __device__ PaddedConsumer(const KernelParams& params, SharedStorage<Cfg>& storage, int warpgroup)
      : p(params),
        smem(storage),
        wg(warpgroup),
        warp((threadIdx.x % kWgThreads) / kWarpSize),
        lane(threadIdx.x % kWarpSize),
        thread(threadIdx.x % kWgThreads),
        scales(folded_scales<Cfg>(params)) {}

  __device__ void run() {
    zero_q_padding();
    hopper::PipelineState<Cfg::kStages> stage;
    uint32_t q_phase = 0;
    for_each_segment(p, blockIdx.x, [&](const Segment& seg) {
      if (seg.pages == 0) {
        write_empty_request<T>(p, CtaRows<false>(p), seg.request, wg * kWgThreads + thread,
                               Cfg::kConsumerThreads);
        return;
      }
      hopper::mbarrier_wait(&smem.q_full, q_phase);
      q_phase ^= 1;
      row_max[0] = row_max[1] = -INFINITY;
      row_sum[0] = row_sum[1] = 0.f;
#pragma unroll
      for (int t = 0; t < Cfg::kVTiles; ++t)
#pragma unroll
        for (int i = 0; i < kRegs; ++i) o[t][i] = 0.f;

      for (int32_t k = seg.page_begin; k < seg.page_end; ++k) {
        BlockArrival<Cfg>(p, smem).wait_boxes(stage.index, stage.phase, 0, Cfg::kBoxes);
        hopper::named_barrier_sync(barrier_id(NamedBarrier::kPFree), Cfg::kConsumerThreads);
        if (wg == 0) {
          float s[kRegs];
          compute_scores(stage.index, s);
          if (k == seg.page_end - 1) {
            // Warpgroup 1 never reads Q: it arrives for the whole CTA's count here.
            if (lane == 0) {
              hopper::mbarrier_arrive(&smem.q_empty);
              hopper::mbarrier_arrive(&smem.q_empty);
            }
          }
          softmax_and_publish(s, seg, k);
        }
        hopper::fence_proxy_async_smem();
        hopper::named_barrier_sync(barrier_id(NamedBarrier::kPReady), Cfg::kConsumerThreads);
        if (k == seg.pages - 1 && seg.seqlen % Cfg::kPageTokens != 0)
          zero_v_tail<Cfg>(smem, stage.index, wg, seg.seqlen % Cfg::kPageTokens);
        rescale_and_accumulate(stage.index);
        if (lane == 0) hopper::mbarrier_arrive(&smem.empty[stage.index]);
        stage.advance();
      }
      epilogue(seg);
    });
  }

  __device__ void zero_q_padding() {
    zero_box_rows([&](int b) { return smem.q[b]; }, Cfg::kBoxes, p.rows, Cfg::kN - p.rows,
                  wg * kWgThreads + thread, Cfg::kConsumerThreads);
    hopper::fence_proxy_async_smem();
    hopper::named_barrier_sync(barrier_id(NamedBarrier::kQPadZeroed), Cfg::kConsumerThreads);
  }

  // S = Q · Kᵀ: A = Q box (64 query rows, K-major), B = K box (64 kv rows, K-major).
  __device__ __forceinline__ void compute_scores(int stage, float (&s)[kRegs]) {
#pragma unroll
    for (int i = 0; i < kRegs; ++i) s[i] = 0.f;
    hopper::wgmma_fence();
#pragma unroll
    for (int ks = 0; ks < Cfg::kQkSteps; ++ks) {
      const int box = ks / 4, k_bytes = (ks % 4) * 32;
      const uint64_t a = hopper::desc_advance(hopper::make_sw128_desc(smem.q[box]), k_bytes);
      const uint64_t b = hopper::desc_advance(hopper::make_sw128_desc(smem.kv[stage][box]), k_bytes);
      hopper::wgmma<64, T, hopper::Major::kK, hopper::Major::kK>(s, a, b, ks > 0 ? 1 : 0);
    }
    hopper::wgmma_commit();
    hopper::wgmma_wait<0>();
    hopper::fence_accumulator(s);
  }

  // Row softmax: a row lives in the 4 lanes of a quad, so its statistics need two shuffles and no smem.
  __device__ __forceinline__ void softmax_and_publish(float (&s)[kRegs], const Segment& seg, int32_t page) {
    float m[2] = {-INFINITY, -INFINITY};
#pragma unroll
    for (int i = 0; i < kRegs; ++i) {
      const auto rc = hopper::accumulator_coord(thread, i);  // row = query row, col = kv
      const int half = (i / 2) % 2;
      const int32_t limit = rc.row >= p.rows ? -1
                            : p.causal       ? seg.seqlen - p.s_q + rc.row / p.h_q
                                             : seg.seqlen - 1;
      const int32_t token = page * Cfg::kPageTokens + rc.col;
      s[i] = token <= limit ? s[i] * logit_scale<Cfg>(p, scales) : -INFINITY;
      m[half] = fmaxf(m[half], s[i]);
    }
    float alpha[2], base[2];
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      m[h] = fmaxf(m[h], __shfl_xor_sync(kFullWarpMask, m[h], 1));
      m[h] = fmaxf(m[h], __shfl_xor_sync(kFullWarpMask, m[h], 2));
      const float new_max = fmaxf(row_max[h], m[h]);
      base[h] = new_max == -INFINITY ? 0.f : new_max;
      alpha[h] = exp2f(row_max[h] - base[h]);
      row_max[h] = new_max;
      row_sum[h] *= alpha[h];
    }
    auto* pbytes = reinterpret_cast<uint8_t*>(smem.p);
#pragma unroll
    for (int i = 0; i < kRegs; ++i) {
      const int half = (i / 2) % 2;
      const float e = exp2f(s[i] - base[half]);
      row_sum[half] += e;
      const auto rc = hopper::accumulator_coord(thread, i);
      *reinterpret_cast<T*>(pbytes + hopper::sw128_offset(rc.row, rc.col)) = static_cast<T>(e);
    }
    if (lane % 4 == 0) {
      const int r = 16 * warp + lane / 4;
      smem.alpha[r] = alpha[0];
      smem.alpha[r + 8] = alpha[1];
    }
  }

  // O = O · alpha (per query row) + P · V: A = P (K-major), B = V box (kv × d, d contiguous: MN-major).
  __device__ __forceinline__ void rescale_and_accumulate(int stage) {
    const int r = 16 * warp + lane / 4;
    const float a0 = smem.alpha[r], a1 = smem.alpha[r + 8];
#pragma unroll
    for (int t = 0; t < Cfg::kVTiles; ++t)
#pragma unroll
      for (int i = 0; i < kRegs; ++i) o[t][i] *= ((i / 2) % 2) ? a1 : a0;
    hopper::wgmma_fence();
    const uint64_t a = hopper::make_sw128_desc(smem.p);
#pragma unroll
    for (int t = 0; t < Cfg::kVTiles; ++t) {
      const uint64_t b = hopper::make_sw128_desc(smem.kv[stage][wg * Cfg::kVTiles + t]);
#pragma unroll
      for (int ks = 0; ks < Cfg::kPvSteps; ++ks)
        hopper::wgmma<64, T, hopper::Major::kK, hopper::Major::kMN>(
            o[t], hopper::desc_advance(a, ks * 32),
            hopper::desc_advance(b, ks * 16 * hopper::kSwizzleRowBytes), 1);
    }
    hopper::wgmma_commit();
    hopper::wgmma_wait<0>();
#pragma unroll
    for (int t = 0; t < Cfg::kVTiles; ++t) hopper::fence_accumulator(o[t]);
  }

  __device__ void epilogue(const Segment& seg) {
    const bool split = seg.num_splits > 1;
    if (wg == 0) {
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        row_sum[h] += __shfl_xor_sync(kFullWarpMask, row_sum[h], 1);
        row_sum[h] += __shfl_xor_sync(kFullWarpMask, row_sum[h], 2);
      }
      if (lane % 4 == 0) {
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          const int row = 16 * warp + lane / 4 + 8 * h;
          smem.row_sum[row] = row_sum[h];
          if (row < p.rows) {
            const float lse2 = row_sum[h] > 0.f ? row_max[h] + log2f(row_sum[h]) : -INFINITY;
            if (split)
              p.partial_lse[partial_row(p, seg.slot, row)] = lse2;
            else if (p.lse)
              p.lse[lse_offset(p, seg.request, row)] = row_sum[h] > 0.f ? lse2 * p.lse_out_scale : INFINITY;
          }
        }
      }
    }
    hopper::named_barrier_sync(barrier_id(NamedBarrier::kRowSumReady), Cfg::kConsumerThreads);
#pragma unroll
    for (int i = 0; i < kRegs; i += 2) {
      const auto rc = hopper::accumulator_coord(thread, i);  // row = query row, col = d (pairs)
      if (rc.row >= p.rows) continue;
      const float l = smem.row_sum[rc.row];
      const float inv = l > 0.f ? out_scale<Cfg>(scales) / l : 0.f;
#pragma unroll
      for (int t = 0; t < Cfg::kVTiles; ++t) {
        const int d = (wg * Cfg::kVTiles + t) * Cfg::kBoxCols + rc.col;
        if (split) {
          float* dst = p.partial_o + partial_row(p, seg.slot, rc.row) * mla::kDv + d;
          *reinterpret_cast<float2*>(dst) = make_float2(o[t][i] * inv, o[t][i + 1] * inv);
        } else {
          T* dst = static_cast<T*>(p.out) + out_offset(p, seg.request, rc.row) + d;
          dst[0] = static_cast<T>(o[t][i] * inv);
          dst[1] = static_cast<T>(o[t][i + 1] * inv);
        }
      }
    }
  }
};

}  // namespace etap::bench::baseline
