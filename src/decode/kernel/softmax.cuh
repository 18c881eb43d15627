// Column-wise online softmax of Sᵀ [64 kv × kHalfN query rows]: statistics run over kv, i.e. across the
// wgmma M dimension — across the 8 row-lanes of a warp (shuffles) and the 4 warps of the warpgroup (smem).
#pragma once

#include <cmath>

#include "hopper/barrier.cuh"
#include "hopper/wgmma.cuh"

namespace etap::decoding {

// Accumulator register i of an m64nN fragment holds column 8·(i/4) + 2·(lane%4) + (i%2): each thread
// holds kCols = N/4 distinct columns, slot c = 2·(i/4) + (i%2), two kv rows per slot.
__device__ __forceinline__ constexpr int column_slot(int i) {
  return 2 * (i / 4) + (i % 2);
}
__device__ __forceinline__ int slot_column(int slot, int lane) {
  return 8 * (slot / 2) + 2 * (lane % 4) + slot % 2;
}

template <int kHalfN>
struct ColumnSoftmax {
  static constexpr int kRegs = kHalfN / 2;
  static constexpr int kCols = kHalfN / 4;
  float max[kCols];  // running column maxima in log2 units (identical in every thread of the warpgroup)
  float sum[kCols];  // this thread's share of the running column sums (its 2 kv rows per page)

  __device__ __forceinline__ void reset() {
#pragma unroll
    for (int c = 0; c < kCols; ++c) {
      max[c] = -INFINITY;
      sum[c] = 0.f;
    }
  }

  // Turns the scaled, masked logits s (log2 units, −inf where masked) into P = exp2(s − max) and the
  // per-column rescale factors alpha of the previous accumulators. `partial` is this warpgroup's
  // [4 warps][kHalfN] buffer; `barrier` its named barrier id.
  __device__ __forceinline__ void update(float (&s)[kRegs], float (&alpha)[kCols], float (*partial)[kHalfN],
                                         uint32_t barrier) {
    const int warp = (threadIdx.x % hopper::kWarpgroupThreads) / kWarpSize, lane = threadIdx.x % kWarpSize;
    float m[kCols];
#pragma unroll
    for (int c = 0; c < kCols; ++c) m[c] = -INFINITY;
#pragma unroll
    for (int i = 0; i < kRegs; ++i) m[column_slot(i)] = fmaxf(m[column_slot(i)], s[i]);
#pragma unroll
    for (int c = 0; c < kCols; ++c) {
      m[c] = fmaxf(m[c], __shfl_xor_sync(kFullWarpMask, m[c], 4));
      m[c] = fmaxf(m[c], __shfl_xor_sync(kFullWarpMask, m[c], 8));
      m[c] = fmaxf(m[c], __shfl_xor_sync(kFullWarpMask, m[c], 16));
    }
    if (lane < 4) {
#pragma unroll
      for (int c = 0; c < kCols; ++c) partial[warp][slot_column(c, lane)] = m[c];
    }
    hopper::named_barrier_sync(barrier, hopper::kWarpgroupThreads);
#pragma unroll
    for (int c = 0; c < kCols; ++c) {
      const int col = slot_column(c, lane);
      const float page_max =
          fmaxf(fmaxf(partial[0][col], partial[1][col]), fmaxf(partial[2][col], partial[3][col]));
      const float new_max = fmaxf(max[c], page_max);
      // A column that has seen no key yet keeps max = −inf; subtract 0 then so that exp2 gives 0, not NaN.
      const float base = new_max == -INFINITY ? 0.f : new_max;
      alpha[c] = exp2f(max[c] - base);
      max[c] = new_max;
      m[c] = base;
    }
#pragma unroll
    for (int c = 0; c < kCols; ++c) sum[c] *= alpha[c];
#pragma unroll
    for (int i = 0; i < kRegs; ++i) {
      s[i] = exp2f(s[i] - m[column_slot(i)]);
      sum[column_slot(i)] += s[i];
    }
  }
};

}  // namespace etap::decoding
