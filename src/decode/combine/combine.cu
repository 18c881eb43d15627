// The combine kernel: merges the fp32 partials of split requests into out and lse.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cmath>

#include "common/constants.hpp"
#include "common/store.cuh"
#include "decode/combine/combine.cuh"
#include "decode/plan/plan.hpp"
#include "hopper/fence.cuh"

namespace etap::decoding {
namespace {

constexpr int kThreads = 512;
constexpr int kBlocksPerSm = 2;             // every block of a b=16, R = 64 combine resident at once
constexpr int kMaxDv = mla::kDv;            // the widest d_v sizes the thread layout
constexpr int kColumnVectors = kMaxDv / 4;  // float4 columns of a row (fewer used at d_v 256)
constexpr int kStateGroups = kThreads / kColumnVectors;  // threads sharing one column split the states
constexpr int kUnroll = 8;                               // independent loads in flight per thread
constexpr int kDirectStates = 2 * kUnroll;               // max splits for the reduction-free path
constexpr int kGridPerPart = 8;                          // most combine blocks per decode part
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

// What the combine needs of split request j (plan.hpp split_requests, split_states, split_slots): three
// independent loads, one round trip where the request id and then its num_splits and slot_offset took two.
struct SplitEntry {
  int32_t request, states, slot;
};
__device__ SplitEntry split_entry(const KernelParams& p, const PlanLayout& layout, int32_t j) {
  return {p.plan[layout.split_requests() + j], p.plan[layout.split_states() + j],
          p.plan[layout.split_slots() + j]};
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

// One thread per float4 column of a row merges the row's (≤ kDirectStates) states by itself, the loads of
// kUnroll states in flight at once, with no reduction across threads: the dependent chain is plan → lse/o →
// store for up to kUnroll states (one more round trip up to kDirectStates). Lane u of each warp loads state
// u's lse and computes its weight, which the others take by shuffle (the 4 warps of a row hold the same row):
// 7 registers fewer per thread while the loads are in flight. The running maximum rescales the first chunk's
// sums when a second one follows; with one chunk the weights and sums are exactly those of a single pass.
template <typename T>
__device__ void merge_direct(const KernelParams& p, const SplitEntry& e, int32_t row, int column) {
  static_assert(kUnroll <= kWarpSize);
  if (column * 4 >= p.d_v) return;  // whole warps (d_v 256: columns 64..127)
  const int lane = threadIdx.x % kWarpSize;
  auto lse_index = static_cast<uint32_t>(partial_row(p, e.slot, row));  // state stride: rows
  // The partials as float4s: every index fits 32 bits (slots ≤ 2·kMaxParts, rows ≤ 4096 by api/validate.cpp,
  // d_v / 4 ≤ 128: below 2^30), so the loads take the 64-bit base from the parameters and a 32-bit index
  // each: fewer registers with all loads in flight.
  const auto* o = reinterpret_cast<const float4*>(p.partial_o);
  auto index = static_cast<uint32_t>(partial_row(p, e.slot, row) * (p.d_v / 4) + column);
  const uint32_t stride = static_cast<uint32_t>(p.rows) * (p.d_v / 4);  // state stride
  float m = -INFINITY, total = 0.f;
  float4 acc = make_float4(0.f, 0.f, 0.f, 0.f);
  for (int s0 = 0; s0 < e.states; s0 += kUnroll, lse_index += kUnroll * p.rows, index += kUnroll * stride) {
    const float mine =
        lane < kUnroll && s0 + lane < e.states ? p.partial_lse[lse_index + lane * p.rows] : -INFINITY;
    // States past the last load the last one again (finite: every split writes its partial) and get
    // weight 0: no predicate per load.
    const int last = e.states - 1 - s0;
    float4 v[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) v[u] = o[index + static_cast<uint32_t>(min(u, last)) * stride];
    float chunk_max = mine;
#pragma unroll
    for (int offset = 1; offset < kUnroll; offset *= 2)
      chunk_max = fmaxf(chunk_max, __shfl_xor_sync(kFullWarpMask, chunk_max, offset));
    chunk_max = fmaxf(m, __shfl_sync(kFullWarpMask, chunk_max, 0));
    if (chunk_max == -INFINITY) continue;        // no key of this row so far (uniform: one row per warp)
    const float rescale = exp2f(m - chunk_max);  // 0 while m is −inf
    total *= rescale;
    acc = make_float4(acc.x * rescale, acc.y * rescale, acc.z * rescale, acc.w * rescale);
    const float my_weight = exp2f(mine - chunk_max);  // 0 for an empty split (lse −inf)
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const float w = __shfl_sync(kFullWarpMask, my_weight, u);
      total += w;
      acc.x += w * v[u].x;
      acc.y += w * v[u].y;
      acc.z += w * v[u].z;
      acc.w += w * v[u].w;
    }
    m = chunk_max;
  }
  store_row<T>(p, e.request, row, column, acc, total, m);
}

// Work items over a grid of at most min(batch, P) · rows blocks (launch_combine), looping when the
// split requests need more. When no request has more than kDirectStates splits (header.max_splits), an item
// is (split request, kStateGroups query rows) and merge_direct runs with one row per 128 threads: the chain
// is header → split entry → lse/o → store.
// Otherwise an item is one row and the block's threads split its 128 float4 columns and, in kStateGroups
// groups, the states, with kUnroll loads in flight each.
template <typename T>
__global__ void __launch_bounds__(kThreads, kBlocksPerSm)
    combine_kernel(const __grid_constant__ KernelParams p) {
  __shared__ float weight[kMaxStates];
  __shared__ float4 group_sum[kStateGroups - 1][kColumnVectors];
  __shared__ float scratch[kWarpSize];
  hopper::wait_prerequisite_grids();
  const PlanLayout layout{p.batch, p.num_parts};  // from the launch: no wait for the header
  const int column = threadIdx.x % kColumnVectors, group = threadIdx.x / kColumnVectors;
  const int row_groups = (p.rows + kStateGroups - 1) / kStateGroups;
  const PlanHeader& header = *reinterpret_cast<const PlanHeader*>(p.plan);
  if (!plan_matches(header, p.batch, p.num_parts)) return;

  if (header.max_splits <= kDirectStates) {
    const int items = header.num_split_requests * row_groups;
    for (int item = blockIdx.x; item < items; item += gridDim.x) {
      const SplitEntry e = split_entry(p, layout, item / row_groups);
      const int32_t row = (item % row_groups) * kStateGroups + group;
      if (row >= p.rows) continue;
      if (!combine_row(p, e.request, row).exists) continue;
      merge_direct<T>(p, e, row, column);
    }
    return;
  }

  const int items = header.num_split_requests * p.rows;
  for (int item = blockIdx.x; item < items; item += gridDim.x) {
    const SplitEntry e = split_entry(p, layout, item / p.rows);
    const int32_t row = item % p.rows;
    if (!combine_row(p, e.request, row).exists) continue;  // the whole block skips the item alike
    const int32_t states = e.states;
    const auto lse_index = static_cast<uint32_t>(partial_row(p, e.slot, row));  // state stride: rows
    const bool active = column * 4 < p.d_v;  // all threads take part in the reductions
    // float4 indices of 32 bits, as in merge_direct.
    const auto* o = reinterpret_cast<const float4*>(p.partial_o);
    const auto index = static_cast<uint32_t>(partial_row(p, e.slot, row) * (p.d_v / 4) + column);
    const uint32_t stride = static_cast<uint32_t>(p.rows) * (p.d_v / 4);  // state stride

    // The first states' partial O are loaded before the weights are known, so that their latency overlaps
    // the lse reductions (the decode kernel writes every split's partial, zeros for rows without keys).
    float4 v[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int s = group + u * kStateGroups;
      v[u] = active && s < states ? o[index + s * stride] : make_float4(0.f, 0.f, 0.f, 0.f);
    }

    // A split that saw no key of this row has lse −inf: weight 0.
    float m = -INFINITY;
    for (int s = threadIdx.x; s < states; s += kThreads) m = fmaxf(m, p.partial_lse[lse_index + s * p.rows]);
    m = block_reduce(m, true, scratch);
    float total = 0.f;
    for (int s = threadIdx.x; s < states; s += kThreads) {
      const float w = m == -INFINITY ? 0.f : exp2f(p.partial_lse[lse_index + s * p.rows] - m);
      weight[s] = w;
      total += w;
    }
    total = block_reduce(total, false, scratch);  // its __syncthreads publishes weight[]

    float4 acc = make_float4(0.f, 0.f, 0.f, 0.f);
    for (int s0 = group;;) {
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        const int s = s0 + u * kStateGroups;
        const float w = s < states ? weight[s] : 0.f;
        acc.x += w * v[u].x;
        acc.y += w * v[u].y;
        acc.z += w * v[u].z;
        acc.w += w * v[u].w;
      }
      s0 += kStateGroups * kUnroll;
      if (s0 >= states) break;
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        const int s = s0 + u * kStateGroups;
        v[u] = active && s < states && weight[s] != 0.f ? o[index + s * stride]
                                                        : make_float4(0.f, 0.f, 0.f, 0.f);
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
      store_row<T>(p, e.request, row, column, acc, total, m);
    }
    __syncthreads();  // group_sum and weight are reused by the next item
  }
}

}  // namespace

cudaError_t launch_combine(const DecodeArgs& args, const KernelParams& params, int32_t num_parts,
                           cudaStream_t stream) {
  cudaLaunchConfig_t config{};
  // One block per item while that fits (b=16, R = 64: 256 direct-path items, resident at once): up to
  // min(batch, P) · rows, the many-split path's item count (one row each), which also bounds the direct
  // path's (kStateGroups rows each); blocks past the items exit after the header.
  const int64_t items = std::min<int64_t>(args.problem.batch, num_parts) * params.rows;
  config.gridDim = dim3(static_cast<unsigned>(std::min<int64_t>(items, int64_t{kGridPerPart} * num_parts)));
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
