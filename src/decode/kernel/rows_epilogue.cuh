// The rows-on-M kernel's softmax statistics (a row's 64 scores live in the 4 lanes of a quad) and its
// epilogue: O is already row-major, so each thread stores pairs of adjacent columns of its two rows.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cmath>
#include <type_traits>

#include "common/constants.hpp"
#include "decode/kernel/barriers.hpp"
#include "decode/kernel/lane_transpose.cuh"
#include "decode/kernel/params.hpp"
#include "decode/kernel/schedule.cuh"
#include "decode/kernel/shared_storage.cuh"
#include "hopper/barrier.cuh"
#include "hopper/wgmma.cuh"

namespace etap::decoding {

// Online softmax of the rows r, r + 8 of an m64n64 S fragment (register i is row half (i / 2) % 2).
struct RowStats {
  float max[2] = {-INFINITY, -INFINITY};  // running row maxima, log2 units (identical in the 4 lanes)
  float sum[2] = {0.f, 0.f};              // this thread's share of the running row sums (16 of 64 kv)

  // s: scaled, masked logits (log2 units, −inf where masked) → P = exp2(s − max); alpha: the rescale of the
  // previous accumulators of each row.
  template <int kRegs>
  __device__ __forceinline__ void update(float (&s)[kRegs], float (&alpha)[2]) {
    float m[2] = {-INFINITY, -INFINITY};
#pragma unroll
    for (int i = 0; i < kRegs; ++i) m[(i / 2) % 2] = fmaxf(m[(i / 2) % 2], s[i]);
    float base[2];
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      m[h] = fmaxf(m[h], __shfl_xor_sync(kFullWarpMask, m[h], 1));
      m[h] = fmaxf(m[h], __shfl_xor_sync(kFullWarpMask, m[h], 2));
      const float new_max = fmaxf(max[h], m[h]);
      // A row that has seen no key yet keeps max = −inf; subtract 0 then so that exp2 gives 0, not NaN.
      base[h] = new_max == -INFINITY ? 0.f : new_max;
      alpha[h] = exp2f(max[h] - base[h]);
      max[h] = new_max;
      sum[h] *= alpha[h];
    }
#pragma unroll
    for (int i = 0; i < kRegs; ++i) {
      s[i] = exp2f(s[i] - base[(i / 2) % 2]);
      sum[(i / 2) % 2] += s[i];
    }
  }
};

// Stores one segment: the score warpgroup (has_stats) reduces the row sums over its quads, writes the LSE
// and publishes the sums; then both warpgroups store their columns of O normalised (final bf16/fp16 output,
// or an fp32 partial for a split request).
template <class Cfg, class Rows, int kORegs>
__device__ void store_rows_segment(const KernelParams& p, SharedStorage<Cfg>& smem, const Rows& rows,
                                   const Segment& seg, const float (&o)[kORegs], const RowStats& stats,
                                   bool has_stats, int wg, int warp, int lane) {
  using T = typename Cfg::Element;
  const bool split = seg.num_splits > 1;
  if (has_stats) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      float total = stats.sum[h];
      total += __shfl_xor_sync(kFullWarpMask, total, 1);
      total += __shfl_xor_sync(kFullWarpMask, total, 2);
      const int r = 16 * warp + lane / 4 + 8 * h;
      if (lane % 4 == 0) {
        smem.row_sum[r] = total;
        const int32_t row = rows.row(p, r);
        if (row >= 0) {
          const float lse2 = total > 0.f ? stats.max[h] + log2f(total) : -INFINITY;
          if (split)
            p.partial_lse[partial_row(p, seg.slot, row)] = lse2;
          else if (p.lse != nullptr)
            p.lse[lse_offset(p, seg.request, row)] = total > 0.f ? lse2 * p.lse_out_scale : INFINITY;
        }
      }
    }
  }
  hopper::named_barrier_sync(barrier_id(NamedBarrier::kRowSumReady), Cfg::kConsumerThreads);

  constexpr int kOCols = kORegs * 2;
  // Final output: a quad's words of four 8-column groups are transposed so that each lane stores 16
  // contiguous bytes (a warp's store covers 64 B of each of 8 rows, two whole 32-byte sectors). Storing the
  // fragment's 4-byte pairs directly wrote half sectors, which measured ~10x slower than whole ones while the
  // other SMs stream KV (2026-12-02d run 2: a 64 KiB epilogue took 27 us).
  constexpr int kGroups = kORegs / 16;  // groups of 4 words (32 columns) per row half
  static_assert(kORegs % 16 == 0, "whole quad transposes");
  const int thread = threadIdx.x % Cfg::kWarpgroupThreads;
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int r = 16 * warp + lane / 4 + 8 * h;
    const int32_t row = rows.row(p, r);  // the same for the 4 lanes of a quad
    const float l = smem.row_sum[r];
    const float inv = l > 0.f ? 1.f / l : 0.f;
    if (split) {
      if (row < 0) continue;
#pragma unroll
      // Registers i, i + 1: row half h, adjacent columns; a warp's store covers one whole sector per row.
      for (int i = 2 * h; i < kORegs; i += 4) {
        const int d = wg * kOCols + hopper::accumulator_coord(thread, i).col;
        float* dst = p.partial_o + partial_row(p, seg.slot, row) * Cfg::kDv + d;
        *reinterpret_cast<float2*>(dst) = make_float2(o[i] * inv, o[i + 1] * inv);
      }
      continue;
    }
    T* dst = row < 0 ? nullptr : static_cast<T*>(p.out) + out_offset(p, seg.request, row) + wg * kOCols;
#pragma unroll
    for (int g = 0; g < kGroups; ++g) {
      uint32_t w[4];
#pragma unroll
      for (int k = 0; k < 4; ++k) {
        const int i = 2 * h + 4 * (4 * g + k);  // columns 8(4g + k) + 2q, + 1
        w[k] = hopper::pack_pair<T>(o[i] * inv, o[i + 1] * inv);
      }
      lane_transpose<4, 1>(w, lane);  // the quad; every lane: full-mask shuffles
      if (row >= 0)
        *reinterpret_cast<uint4*>(dst + 8 * (4 * g + lane % 4)) = make_uint4(w[0], w[1], w[2], w[3]);
    }
  }
}

}  // namespace etap::decoding
