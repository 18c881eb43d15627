// Epilogue: reduces the softmax denominators, transposes Oᵀ back while storing O (final bf16/fp16 output,
// or an fp32 partial for a split request), and writes the LSE.
#pragma once

#include <cmath>

#include "decode/barriers.hpp"
#include "decode/params.hpp"
#include "decode/schedule.cuh"
#include "decode/shared_storage.cuh"
#include "decode/softmax.cuh"
#include "hopper/barrier.cuh"
#include "hopper/wgmma.cuh"

namespace etap::decoding {

inline constexpr int kDv = 512;

__device__ __forceinline__ int64_t out_row_offset(const KernelParams& p, int32_t request, int32_t row) {
  const int32_t s = row / p.h_q, h = row % p.h_q;
  return request * p.out_batch_stride + s * p.out_seq_stride + h * p.out_head_stride;
}

__device__ __forceinline__ float* lse_ptr(const KernelParams& p, int32_t request, int32_t row) {
  const int32_t s = row / p.h_q, h = row % p.h_q;
  return p.lse + request * p.lse_batch_stride + h * p.lse_head_stride + s * p.lse_seq_stride;
}

// A request with no key: out = 0, lse = +inf (FlashMLA's convention). Threads [0, threads) share the rows.
template <typename T>
__device__ void write_empty_request(const KernelParams& p, int32_t request, int thread, int threads) {
  constexpr int kChunk = 16 / sizeof(T);  // elements per 16-byte store
  for (int idx = thread; idx < p.rows * (kDv / kChunk); idx += threads) {
    const int row = idx / (kDv / kChunk), chunk = idx % (kDv / kChunk);
    T* out = static_cast<T*>(p.out) + out_row_offset(p, request, row) + chunk * kChunk;
    *reinterpret_cast<uint4*>(out) = make_uint4(0, 0, 0, 0);
  }
  if (p.lse != nullptr)
    for (int row = thread; row < p.rows; row += threads) *lse_ptr(p, request, row) = INFINITY;
}

template <class Cfg, class Softmax>
__device__ void store_segment(const KernelParams& p, SharedStorage<Cfg>& smem, const Segment& seg,
                              const float (&o)[Cfg::kVTiles][Cfg::kN / 2], const Softmax& softmax,
                              float (*partial)[Cfg::kHalfN], int wg, int warp, int lane) {
  using T = typename Cfg::Element;
  constexpr int kCols = Softmax::kCols;
  const int col0 = wg * Cfg::kHalfN;

  // Column sums: 8 row-lanes by shuffles, 4 warps through smem, then shared with the other warpgroup.
  float sum[kCols];
#pragma unroll
  for (int c = 0; c < kCols; ++c) {
    sum[c] = softmax.sum[c];
    sum[c] += __shfl_xor_sync(0xffffffffu, sum[c], 4);
    sum[c] += __shfl_xor_sync(0xffffffffu, sum[c], 8);
    sum[c] += __shfl_xor_sync(0xffffffffu, sum[c], 16);
  }
  if (lane < 4) {
#pragma unroll
    for (int c = 0; c < kCols; ++c) partial[warp][slot_column(c, lane)] = sum[c];
  }
  hopper::named_barrier_sync(barrier_id(NamedBarrier::kColumnMaxWritten, wg), 128);
  const bool split = seg.num_splits > 1;
  if (warp == 0 && lane < 4) {
#pragma unroll
    for (int c = 0; c < kCols; ++c) {
      const int col = slot_column(c, lane);
      const float total = partial[0][col] + partial[1][col] + partial[2][col] + partial[3][col];
      smem.row_sum[col0 + col] = total;
      const int row = col0 + col;
      if (row < p.rows) {
        const float lse2 = total > 0.f ? softmax.max[c] + log2f(total) : -INFINITY;
        if (split) {
          p.partial_lse[static_cast<int64_t>(seg.slot) * p.rows + row] = lse2;
        } else if (p.lse != nullptr) {
          *lse_ptr(p, seg.request, row) = total > 0.f ? lse2 * p.lse_out_scale : INFINITY;
        }
      }
    }
  }
  hopper::named_barrier_sync(barrier_id(NamedBarrier::kRowSumReady), 256);

  float inv[Cfg::kN / 4];  // 1/l for this thread's columns of Oᵀ
#pragma unroll
  for (int c = 0; c < Cfg::kN / 4; ++c) {
    const float l = smem.row_sum[slot_column(c, lane)];
    inv[c] = l > 0.f ? 1.f / l : 0.f;
  }
  const int thread = threadIdx.x % 128;
#pragma unroll
  for (int i = 0; i < Cfg::kN / 2; ++i) {
    const auto rc = hopper::accumulator_coord(thread, i);  // row = d within the tile, col = query row
    if (rc.col >= p.rows) continue;
    if (split) {
      float* dst = p.partial_o + (static_cast<int64_t>(seg.slot) * p.rows + rc.col) * kDv;
#pragma unroll
      for (int t = 0; t < Cfg::kVTiles; ++t)
        dst[wg * Cfg::kVTiles * 64 + t * 64 + rc.row] = o[t][i] * inv[column_slot(i)];
    } else {
      T* dst = static_cast<T*>(p.out) + out_row_offset(p, seg.request, rc.col);
#pragma unroll
      for (int t = 0; t < Cfg::kVTiles; ++t)
        dst[wg * Cfg::kVTiles * 64 + t * 64 + rc.row] = static_cast<T>(o[t][i] * inv[column_slot(i)]);
    }
  }
}

}  // namespace etap::decoding
