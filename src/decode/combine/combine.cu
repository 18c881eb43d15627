// The combine kernel: merges the fp32 partials of split requests into out and lse.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cmath>

#include "common/constants.hpp"
#include "common/store.cuh"
#include "decode/combine/combine.cuh"
#include "decode/plan/plan.hpp"
#include "hopper/fence.cuh"

namespace etap::decoding {
namespace {

constexpr int kThreads = 512;
constexpr int kMaxDv = mla::kDv;                         // the widest d_v sizes the thread layout
constexpr int kColumnVectors = kMaxDv / 4;               // float4 columns of a row (fewer used at d_v 256)
constexpr int kStateGroups = kThreads / kColumnVectors;  // threads sharing one column split the states
constexpr int kUnroll = 8;                               // independent loads in flight per thread
constexpr int kDirectStates = 16;                        // max splits for the reduction-free path
constexpr int kMaxStates = 1024;                         // splits of one request ≤ parts ≤ kMaxParts
static_assert(kMaxStates >= kMaxParts);

__device__ float block_reduce(float v, bool is_max, float* scratch) {
  for (int offset = kWarpSize / 2; offset > 0; offset /= 2) {
    const float o = __shfl_xor_sync(kFullWarpMask, v, offset);
    v = is_max ? fmaxf(v, o) : v + o;
  }
  const int warp = threadIdx.x / kWarpSize, lane = threadIdx.x % kWarpSize;
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = lane < kThreads / kWarpSize ? scratch[lane] : (is_max ? -INFINITY : 0.f);
  for (int offset = kWarpSize / 2; offset > 0; offset /= 2) {
    const float o = __shfl_xor_sync(kFullWarpMask, v, offset);
    v = is_max ? fmaxf(v, o) : v + o;
  }
  __syncthreads();  // scratch is reused by the next reduction
  return v;
}

// Varlen: whether `row` is one of the request's query rows (its q_len · h_q rows; the decode kernel writes no
// partial for the others), and where it lives in out and lse (rows count from its first packed token).
struct CombineRow {
  bool exists;
  int32_t out_row;
};
__device__ CombineRow combine_row(const KernelParams& p, int32_t request, int32_t row) {
  if (p.cu_seqlens_q == nullptr) return {true, row};
  const QuerySpan span = query_span(p, request);
  return {row < span.tokens * p.h_q, span.first * p.h_q + row};
}

// Writes one float4 column of a merged row (normalised) and, from column 0, its lse in the requested base.
template <typename T>
__device__ void store_row(const KernelParams& p, int32_t request, int32_t row, int column, float4 acc,
                          float total, float max_log2) {
  const float inv = total > 0.f ? 1.f / total : 0.f;
  const int32_t out_row = combine_row(p, request, row).out_row;
  T* out = static_cast<T*>(p.out) + out_offset(p, request, out_row);
  store4(out + column * 4, make_float4(acc.x * inv, acc.y * inv, acc.z * inv, acc.w * inv));
  if (column == 0 && p.lse != nullptr)
    p.lse[lse_offset(p, request, out_row)] =
        total > 0.f ? (max_log2 + log2f(total)) * p.lse_out_scale : INFINITY;
}

// One thread per float4 column of a row merges the row's (≤ kDirectStates) states by itself: all loads
// are issued at once and the weights need no reduction, so the dependent chain is plan → lse/o → store.
template <typename T>
__device__ void merge_direct(const KernelParams& p, int32_t request, int32_t row, int32_t states,
                             int64_t slot, int column) {
  if (column * 4 >= p.d_v) return;
  const float* lse = p.partial_lse + partial_row(p, slot, row);                   // state stride: rows
  const float* o = p.partial_o + partial_row(p, slot, row) * p.d_v + column * 4;  // state stride: rows · d_v
  const int64_t o_stride = static_cast<int64_t>(p.rows) * p.d_v;
  float l[kDirectStates];
  float4 v[kDirectStates];
#pragma unroll
  for (int s = 0; s < kDirectStates; ++s) {
    l[s] = s < states ? lse[s * p.rows] : -INFINITY;
    v[s] = s < states ? *reinterpret_cast<const float4*>(o + s * o_stride) : make_float4(0.f, 0.f, 0.f, 0.f);
  }
  float m = -INFINITY;
#pragma unroll
  for (int s = 0; s < kDirectStates; ++s) m = fmaxf(m, l[s]);
  float total = 0.f;
  float4 acc = make_float4(0.f, 0.f, 0.f, 0.f);
  if (m != -INFINITY) {
#pragma unroll
    for (int s = 0; s < kDirectStates; ++s) {
      const float w = exp2f(l[s] - m);  // 0 for an empty split (lse −inf)
      total += w;
      acc.x += w * v[s].x;
      acc.y += w * v[s].y;
      acc.z += w * v[s].z;
      acc.w += w * v[s].w;
    }
  }
  store_row<T>(p, request, row, column, acc, total, m);
}

// Persistent over work items; the number of split requests is known only on the device, hence the loop
// instead of a grid per item. When no request has more than kDirectStates splits (header.max_splits), an
// item is (split request, 4 query rows) and merge_direct runs with one row per 128 threads. Otherwise an
// item is one row and the block's threads split its 128 float4 columns and, in kStateGroups groups, the
// states, with kUnroll loads in flight each.
template <typename T>
__global__ void __launch_bounds__(kThreads) combine_kernel(const __grid_constant__ KernelParams p) {
  __shared__ float weight[kMaxStates];
  __shared__ float4 group_sum[kStateGroups - 1][kColumnVectors];
  __shared__ float scratch[kWarpSize];
  hopper::wait_prerequisite_grids();
  const PlanHeader& header = *reinterpret_cast<const PlanHeader*>(p.plan);
  const PlanLayout layout{p.batch, p.num_parts};  // from the launch: no wait for the header
  const int column = threadIdx.x % kColumnVectors, group = threadIdx.x / kColumnVectors;
  if (!plan_matches(header, p.batch, p.num_parts)) return;

  if (header.max_splits <= kDirectStates) {
    const int row_groups = (p.rows + kStateGroups - 1) / kStateGroups;
    const int items = header.num_split_requests * row_groups;
    for (int item = blockIdx.x; item < items; item += gridDim.x) {
      const int32_t row = (item % row_groups) * kStateGroups + group;
      if (row >= p.rows) continue;
      const int32_t request = p.plan[layout.split_requests() + item / row_groups];
      if (!combine_row(p, request, row).exists) continue;
      merge_direct<T>(p, request, row, p.plan[layout.num_splits() + request],
                      p.plan[layout.slot_offset() + request], column);
    }
    return;
  }

  const int items = header.num_split_requests * p.rows;
  for (int item = blockIdx.x; item < items; item += gridDim.x) {
    const int32_t request = p.plan[layout.split_requests() + item / p.rows];
    const int32_t row = item % p.rows;
    if (!combine_row(p, request, row).exists) continue;  // the whole block skips the item alike
    const int32_t states = p.plan[layout.num_splits() + request];
    const int64_t slot = p.plan[layout.slot_offset() + request];
    const float* lse = p.partial_lse + partial_row(p, slot, row);  // state stride: rows
    const bool active = column * 4 < p.d_v;                        // all threads take part in the reductions
    const float* o =
        p.partial_o + partial_row(p, slot, row) * p.d_v + column * 4;  // state stride: rows · d_v

    // The first states' partial O are loaded before the weights are known, so that their latency overlaps
    // the lse reductions (the decode kernel writes every split's partial, zeros for rows without keys).
    const int64_t o_stride = static_cast<int64_t>(p.rows) * p.d_v;
    float4 first[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int s = group + u * kStateGroups;
      first[u] = active && s < states ? *reinterpret_cast<const float4*>(o + s * o_stride)
                                      : make_float4(0.f, 0.f, 0.f, 0.f);
    }

    // A split that saw no key of this row has lse −inf: weight 0.
    float m = -INFINITY;
    for (int s = threadIdx.x; s < states; s += kThreads) m = fmaxf(m, lse[s * p.rows]);
    m = block_reduce(m, true, scratch);
    float total = 0.f;
    for (int s = threadIdx.x; s < states; s += kThreads) {
      const float w = m == -INFINITY ? 0.f : exp2f(lse[s * p.rows] - m);
      weight[s] = w;
      total += w;
    }
    total = block_reduce(total, false, scratch);  // its __syncthreads publishes weight[]

    float4 acc = make_float4(0.f, 0.f, 0.f, 0.f);
    for (int s0 = group; s0 < states; s0 += kStateGroups * kUnroll) {
      float4 v[kUnroll];
      float w[kUnroll];
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        const int s = s0 + u * kStateGroups;
        w[u] = s < states ? weight[s] : 0.f;
        if (s0 == group)
          v[u] = first[u];
        else
          v[u] = active && w[u] != 0.f ? *reinterpret_cast<const float4*>(o + s * o_stride)
                                       : make_float4(0.f, 0.f, 0.f, 0.f);
      }
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        acc.x += w[u] * v[u].x;
        acc.y += w[u] * v[u].y;
        acc.z += w[u] * v[u].z;
        acc.w += w[u] * v[u].w;
      }
    }
    if (group > 0) group_sum[group - 1][column] = acc;
    __syncthreads();
    if (group == 0 && active) {
#pragma unroll
      for (int g = 0; g < kStateGroups - 1; ++g) {
        const float4 other = group_sum[g][column];
        acc.x += other.x;
        acc.y += other.y;
        acc.z += other.z;
        acc.w += other.w;
      }
      store_row<T>(p, request, row, column, acc, total, m);
    }
    __syncthreads();  // group_sum and weight are reused by the next item
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
  if (args.problem.out_dtype == DType::kBF16)
    return cudaLaunchKernelEx(&config, combine_kernel<__nv_bfloat16>, params);
  return cudaLaunchKernelEx(&config, combine_kernel<__half>, params);
}

}  // namespace etap::decoding
