#include "decode/combine.cuh"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cmath>
#include <type_traits>

#include "decode/plan.hpp"
#include "hopper/fence.cuh"

namespace etap::decoding {
namespace {

constexpr int kDv = 512;
constexpr int kColumnVectors = kDv / 4;  // float4 columns of a row: one thread each
constexpr int kRowsPerBlock = 4;
constexpr int kThreads = kRowsPerBlock * kColumnVectors;
constexpr int kUnroll = 8;  // states whose loads are in flight together

template <typename T>
__device__ void store4(T* dst, float4 v) {
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    const __nv_bfloat162 lo = __floats2bfloat162_rn(v.x, v.y), hi = __floats2bfloat162_rn(v.z, v.w);
    *reinterpret_cast<uint2*>(dst) =
        make_uint2(*reinterpret_cast<const uint32_t*>(&lo), *reinterpret_cast<const uint32_t*>(&hi));
  } else {
    const __half2 lo = __floats2half2_rn(v.x, v.y), hi = __floats2half2_rn(v.z, v.w);
    *reinterpret_cast<uint2*>(dst) =
        make_uint2(*reinterpret_cast<const uint32_t*>(&lo), *reinterpret_cast<const uint32_t*>(&hi));
  }
}

// Persistent over (split request, group of 4 query rows); each thread owns one float4 column of one row
// and merges all states of it by itself: every thread of a row reads the same lse values (L1 broadcasts),
// so there is no reduction and no barrier, and the dependent chain is plan → lse/o → store.
// The number of split requests is known only on the device, hence the loop instead of a grid per item.
template <typename T>
__global__ void __launch_bounds__(kThreads) combine_kernel(const __grid_constant__ KernelParams p) {
  hopper::wait_prerequisite_grids();
  const PlanHeader& header = *reinterpret_cast<const PlanHeader*>(p.plan);
  const PlanLayout layout{header.batch, header.num_parts};
  const int row_groups = (p.rows + kRowsPerBlock - 1) / kRowsPerBlock;
  const int items = header.num_split_requests * row_groups;
  const int column = threadIdx.x % kColumnVectors;

  for (int item = blockIdx.x; item < items; item += gridDim.x) {
    const int32_t row = (item % row_groups) * kRowsPerBlock + threadIdx.x / kColumnVectors;
    if (row >= p.rows) continue;
    const int32_t request = p.plan[layout.split_requests() + item / row_groups];
    const int32_t states = p.plan[layout.num_splits() + request];
    const int64_t slot = p.plan[layout.slot_offset() + request];
    const float* lse = p.partial_lse + slot * p.rows + row;                   // state stride: rows
    const float* o = p.partial_o + (slot * p.rows + row) * kDv + column * 4;  // state stride: rows · 512
    const int64_t o_stride = static_cast<int64_t>(p.rows) * kDv;

    // A split that saw no key of this row has lse −inf (weight 0).
    float m = -INFINITY;
#pragma unroll kUnroll
    for (int s = 0; s < states; ++s) m = fmaxf(m, lse[s * p.rows]);
    float total = 0.f;
    float4 acc = make_float4(0.f, 0.f, 0.f, 0.f);
    if (m != -INFINITY) {
      for (int s0 = 0; s0 < states; s0 += kUnroll) {
        float w[kUnroll];
        float4 v[kUnroll];
#pragma unroll
        for (int u = 0; u < kUnroll; ++u) {
          const int s = s0 + u;
          w[u] = s < states ? exp2f(lse[s * p.rows] - m) : 0.f;
          v[u] = w[u] != 0.f ? *reinterpret_cast<const float4*>(o + s * o_stride) : make_float4(0.f, 0.f, 0.f, 0.f);
        }
#pragma unroll
        for (int u = 0; u < kUnroll; ++u) {
          total += w[u];
          acc.x += w[u] * v[u].x;
          acc.y += w[u] * v[u].y;
          acc.z += w[u] * v[u].z;
          acc.w += w[u] * v[u].w;
        }
      }
    }
    const float inv = total > 0.f ? 1.f / total : 0.f;
    const int32_t s = row / p.h_q, h = row % p.h_q;
    T* out = static_cast<T*>(p.out) + request * p.out_batch_stride + s * p.out_seq_stride + h * p.out_head_stride;
    store4(out + column * 4, make_float4(acc.x * inv, acc.y * inv, acc.z * inv, acc.w * inv));
    if (column == 0 && p.lse != nullptr)
      p.lse[request * p.lse_batch_stride + h * p.lse_head_stride + s * p.lse_seq_stride] =
          total > 0.f ? (m + log2f(total)) * p.lse_out_scale : INFINITY;
  }
}

}  // namespace

cudaError_t launch_combine(const DecodeArgs& args, const KernelParams& params, int32_t num_parts,
                           cudaStream_t stream) {
  cudaLaunchConfig_t config{};
  config.gridDim = dim3(2 * num_parts);
  config.blockDim = dim3(kThreads);
  config.stream = stream;
  cudaLaunchAttribute attribute{};
  attribute.id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attribute.val.programmaticStreamSerializationAllowed = 1;
  config.attrs = &attribute;
  config.numAttrs = 1;
  if (args.problem.out_dtype == DType::kBF16) return cudaLaunchKernelEx(&config, combine_kernel<__nv_bfloat16>, params);
  return cudaLaunchKernelEx(&config, combine_kernel<__half>, params);
}

}  // namespace etap::decoding
