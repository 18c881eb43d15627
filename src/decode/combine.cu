#include "decode/combine.cuh"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "decode/plan.hpp"
#include "hopper/fence.cuh"
#include "merge/merge.cuh"

namespace etap::decoding {
namespace {

constexpr int kRowsPerBlock = 8;  // one warp per row
constexpr int kDv = 512;

template <typename T>
__global__ void __launch_bounds__(32 * kRowsPerBlock) combine_kernel(const __grid_constant__ KernelParams p) {
  hopper::wait_prerequisite_grids();
  const PlanHeader& header = *reinterpret_cast<const PlanHeader*>(p.plan);
  if (static_cast<int32_t>(blockIdx.x) >= header.num_split_requests) return;
  const PlanLayout layout{header.batch, header.num_parts};
  const int32_t request = p.plan[layout.split_requests() + blockIdx.x];
  const int32_t row = blockIdx.y * kRowsPerBlock + threadIdx.x / 32;
  if (row >= p.rows) return;
  const int32_t splits = p.plan[layout.num_splits() + request];
  const int64_t slot = p.plan[layout.slot_offset() + request];
  const int32_t s = row / p.h_q, h = row % p.h_q;
  T* out = static_cast<T*>(p.out) + request * p.out_batch_stride + s * p.out_seq_stride + h * p.out_head_stride;
  float* lse = p.lse ? p.lse + request * p.lse_batch_stride + h * p.lse_head_stride + s * p.lse_seq_stride : nullptr;
  merge::merge_row_warp<T>(p.partial_o + (slot * p.rows + row) * kDv, static_cast<int64_t>(p.rows) * kDv,
                           p.partial_lse + slot * p.rows + row, p.rows, splits, kDv, 1.f, p.lse_out_scale, out,
                           lse);
}

}  // namespace

cudaError_t launch_combine(const DecodeArgs& args, const KernelParams& params, int32_t num_parts,
                           cudaStream_t stream) {
  cudaLaunchConfig_t config{};
  config.gridDim = dim3(num_parts, (params.rows + kRowsPerBlock - 1) / kRowsPerBlock);
  config.blockDim = dim3(32 * kRowsPerBlock);
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
