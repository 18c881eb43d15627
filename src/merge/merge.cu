// etap::merge_states: LSE-weighted merge of partial attention states, one warp per row.
#include <cstdint>
#include <etap/etap.hpp>
#include <string>

#include "api/api_internal.hpp"
#include "merge/merge.cuh"

namespace etap {
namespace {

constexpr int kWarpsPerBlock = 8;
constexpr int kAlignBytes = 16;

template <typename OutT>
__global__ void __launch_bounds__(kWarpsPerBlock* kWarpSize)
    merge_states_kernel(const MergeArgs args, float lse_to_log2, float log2_to_out) {
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / kWarpSize;
  if (row >= args.rows) return;  // warp-uniform
  merge::merge_row_warp<OutT>(
      args.o_states + row * args.o_row_stride, args.o_state_stride, args.lse_states + row,
      args.lse_state_stride, args.num_states, args.dim, lse_to_log2, log2_to_out,
      static_cast<OutT*>(args.out) + row * args.out_row_stride, args.lse_out ? args.lse_out + row : nullptr);
}

Status invalid(const std::string& message) {
  return {StatusCode::kInvalidArgument, "merge_states: " + message};
}

bool aligned(const void* ptr, std::size_t bytes) {
  return reinterpret_cast<std::uintptr_t>(ptr) % bytes == 0;
}

Status validate_merge(const MergeArgs& a) {
  if (a.num_states < 1) return invalid("num_states must be >= 1; got " + std::to_string(a.num_states));
  if (a.rows < 0) return invalid("rows must be >= 0; got " + std::to_string(a.rows));
  if (a.dim <= 0 || a.dim % merge::kVector != 0)
    return invalid("dim must be a positive multiple of 4; got " + std::to_string(a.dim));
  if (a.out_dtype != DType::kBF16 && a.out_dtype != DType::kFP16 && a.out_dtype != DType::kFP32)
    return invalid(std::string("out_dtype must be bf16, fp16 or fp32; got ") + to_string(a.out_dtype));
  if (a.lse_base != LseBase::kNatural && a.lse_base != LseBase::kBase2)
    return invalid("lse_base must be kNatural or kBase2");
  if (a.rows == 0) return Status::Ok();

  if (!a.o_states) return invalid("o_states is null");
  if (!a.lse_states) return invalid("lse_states is null");
  if (!a.out) return invalid("out is null");
  if (!aligned(a.o_states, kAlignBytes)) return invalid("o_states must be 16-byte aligned (float4 loads)");
  if (a.o_state_stride % merge::kVector != 0 || a.o_row_stride % merge::kVector != 0)
    return invalid("o_state_stride and o_row_stride must be multiples of 4 elements; got " +
                   std::to_string(a.o_state_stride) + " and " + std::to_string(a.o_row_stride));
  const std::size_t out_elem = dtype_bytes(a.out_dtype);
  if (!aligned(a.out, merge::kVector * out_elem))
    return invalid("out must be aligned to 4 elements (" + std::to_string(merge::kVector * out_elem) +
                   " bytes)");
  if (a.out_row_stride % merge::kVector != 0)
    return invalid("out_row_stride must be a multiple of 4 elements; got " +
                   std::to_string(a.out_row_stride));
  if (a.rows > 1 && a.out_row_stride < a.dim)
    return invalid("out_row_stride (" + std::to_string(a.out_row_stride) + ") is smaller than dim (" +
                   std::to_string(a.dim) + "): rows would overlap");
  return Status::Ok();
}

}  // namespace

Status merge_states(const MergeArgs& args, cudaStream_t stream) {
  if (Status status = validate_merge(args); !status.ok()) return status;
  if (args.rows == 0) return Status::Ok();
  // Built for compute capability 9.0 only: say so rather than fail the launch with a CUDA error.
  if (Status device = api::check_current_device(); !device.ok()) return device;

  const bool natural = args.lse_base == LseBase::kNatural;
  const float lse_to_log2 = natural ? kLog2e : 1.f;
  const float log2_to_out = natural ? kLn2 : 1.f;
  const dim3 grid(static_cast<unsigned>((args.rows + kWarpsPerBlock - 1) / kWarpsPerBlock));
  const dim3 block(kWarpsPerBlock * kWarpSize);
  switch (args.out_dtype) {
    case DType::kBF16:
      merge_states_kernel<__nv_bfloat16><<<grid, block, 0, stream>>>(args, lse_to_log2, log2_to_out);
      break;
    case DType::kFP16:
      merge_states_kernel<__half><<<grid, block, 0, stream>>>(args, lse_to_log2, log2_to_out);
      break;
    default:
      merge_states_kernel<float><<<grid, block, 0, stream>>>(args, lse_to_log2, log2_to_out);
      break;
  }
  if (const cudaError_t err = cudaGetLastError(); err != cudaSuccess)
    return {StatusCode::kCudaError,
            std::string("merge_states: kernel launch failed: ") + cudaGetErrorString(err)};
  return Status::Ok();
}

}  // namespace etap
