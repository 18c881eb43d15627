// Device building block of etap::merge_states: a warp-cooperative LSE-weighted merge of one row (the decode
// path has its own combine kernel, src/decode/combine.cu, tuned for its plan).
#pragma once

#include <cstdint>

#include "common/constants.hpp"
#include "common/store.cuh"

namespace etap::merge {

inline constexpr int kVector = 4;                         // floats per float4 load
inline constexpr int kWarpColumns = kWarpSize * kVector;  // columns one warp covers per step

namespace detail {

__device__ __forceinline__ float warp_max(float v) {
  for (int offset = kWarpSize / 2; offset > 0; offset /= 2)
    v = fmaxf(v, __shfl_xor_sync(kFullWarpMask, v, offset));
  return v;
}

__device__ __forceinline__ float warp_sum(float v) {
  for (int offset = kWarpSize / 2; offset > 0; offset /= 2) v += __shfl_xor_sync(kFullWarpMask, v, offset);
  return v;
}

// Unnormalised weight 2^(lse − max) of one state; an empty state (lse ±inf) weighs 0.
__device__ __forceinline__ float state_weight(float lse_log2, float max_log2) {
  return isinf(lse_log2) ? 0.f : exp2f(lse_log2 - max_log2);
}

}  // namespace detail

// Warp-cooperative merge of one row: the 32 lanes split `dim` (multiple of 4; float4 loads).
// lse values are multiplied by lse_to_log2 (1 for base-2 inputs, log2(e) for natural) before merging;
// the merged log2 value is multiplied by log2_to_out (1 or ln 2) when written to *lse_out (if not null).
// States whose lse is ±inf are empty (weight 0); if all are empty, out = 0 and lse = +inf.
// o: [num_states, dim] with state stride o_state_stride; lse: [num_states] with stride lse_state_stride;
// out: [dim]. Requires o and every o + s·o_state_stride 16-byte aligned, out aligned to 4 elements, and all
// 32 lanes calling. States are summed in index order, so results are deterministic.
template <typename OutT>  // OutT = __nv_bfloat16, __half or float
__device__ void merge_row_warp(const float* o, int64_t o_state_stride, const float* lse,
                               int64_t lse_state_stride, int num_states, int dim, float lse_to_log2,
                               float log2_to_out, OutT* out, float* lse_out) {
  const int lane = static_cast<int>(threadIdx.x % kWarpSize);

  float max_log2 = -INFINITY;
  for (int s = lane; s < num_states; s += kWarpSize) {
    const float l = lse[s * lse_state_stride] * lse_to_log2;
    if (!isinf(l)) max_log2 = fmaxf(max_log2, l);
  }
  max_log2 = detail::warp_max(max_log2);

  if (max_log2 == -INFINITY) {  // every state empty
    for (int c = lane * kVector; c < dim; c += kWarpColumns) store4(out + c, make_float4(0.f, 0.f, 0.f, 0.f));
    if (lse_out && lane == 0) *lse_out = INFINITY;
    return;
  }

  float sum = 0.f;
  for (int s = lane; s < num_states; s += kWarpSize)
    sum += detail::state_weight(lse[s * lse_state_stride] * lse_to_log2, max_log2);
  sum = detail::warp_sum(sum);
  const float inv_sum = 1.f / sum;

  // The loop bounds are warp-uniform so that every lane takes part in the shuffles.
  for (int c0 = 0; c0 < dim; c0 += kWarpColumns) {
    const int c = c0 + lane * kVector;
    const bool active = c < dim;
    float4 acc = make_float4(0.f, 0.f, 0.f, 0.f);
    for (int s0 = 0; s0 < num_states; s0 += kWarpSize) {
      const int s_lane = s0 + lane;
      const float my_weight =
          s_lane < num_states ? detail::state_weight(lse[s_lane * lse_state_stride] * lse_to_log2, max_log2)
                              : 0.f;
      const int group = min(kWarpSize, num_states - s0);
      for (int j = 0; j < group; ++j) {
        const float w = __shfl_sync(kFullWarpMask, my_weight, j);
        // An empty state's o may be garbage (never written): skip it rather than multiply by 0.
        if (w == 0.f || !active) continue;
        const float4 v = *reinterpret_cast<const float4*>(o + (s0 + j) * o_state_stride + c);
        acc.x += w * v.x;
        acc.y += w * v.y;
        acc.z += w * v.z;
        acc.w += w * v.w;
      }
    }
    if (active)
      store4(out + c, make_float4(acc.x * inv_sum, acc.y * inv_sum, acc.z * inv_sum, acc.w * inv_sum));
  }
  if (lse_out && lane == 0) *lse_out = (max_log2 + log2f(sum)) * log2_to_out;
}

}  // namespace etap::merge
