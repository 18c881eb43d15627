// Chooses the kernel instantiation (N = R rounded up to 16, dtype) and launches decode + combine.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <numbers>

#include "decode/combine.cuh"
#include "decode/kernel_launch.cuh"
#include "decode/launch.hpp"

namespace etap::decoding {
namespace {

KernelParams make_params(const DecodeArgs& args, const int32_t* plan, void* workspace, int32_t num_parts) {
  const DecodeProblem& pb = args.problem;
  const WorkspaceLayout ws = WorkspaceLayout::make(pb, num_parts);
  auto* bytes = static_cast<uint8_t*>(workspace);
  KernelParams p{};
  p.plan = plan;
  p.seqlens = args.seqlens;
  p.block_table = args.block_table;
  p.block_table_stride = args.block_table_stride;
  p.batch = pb.batch;
  p.s_q = pb.s_q;
  p.h_q = pb.h_q;
  p.rows = pb.rows();
  p.max_pages = pb.max_pages_per_seq;
  p.num_parts = num_parts;
  p.scale_log2 = args.softmax_scale * std::numbers::log2e_v<float>;
  p.lse_out_scale = args.lse_base == LseBase::kNatural ? std::numbers::ln2_v<float> : 1.f;
  p.causal = args.causal ? 1 : 0;
  p.out = args.out;
  p.out_batch_stride = args.out_batch_stride;
  p.out_seq_stride = args.out_seq_stride;
  p.out_head_stride = args.out_head_stride;
  p.lse = args.lse;
  p.lse_batch_stride = args.lse_batch_stride;
  p.lse_head_stride = args.lse_head_stride;
  p.lse_seq_stride = args.lse_seq_stride;
  p.partial_o = reinterpret_cast<float*>(bytes + WorkspaceLayout::kPartialOffset);
  p.partial_lse = reinterpret_cast<float*>(bytes + ws.lse_offset());
  return p;
}

template <typename T>
cudaError_t launch_for_rows(const DecodeArgs& args, const KernelParams& params, int32_t num_parts,
                            cudaStream_t stream) {
  const int n = (params.rows + 15) / 16 * 16;
  switch (n) {
    case 16:
      return launch_etap_kernel<16, T>(args, params, num_parts, stream);
    case 32:
      return launch_etap_kernel<32, T>(args, params, num_parts, stream);
    case 48:
      return launch_etap_kernel<48, T>(args, params, num_parts, stream);
    case 64:
      return launch_etap_kernel<64, T>(args, params, num_parts, stream);
    default:
      return cudaErrorNotSupported;
  }
}

}  // namespace

cudaError_t launch_decode(const DecodeArgs& args, const int32_t* plan, PlanParams params, void* workspace,
                          cudaStream_t stream) {
  const KernelParams kp = make_params(args, plan, workspace, params.num_parts);
  const cudaError_t e = args.problem.q_dtype == DType::kBF16
                            ? launch_for_rows<__nv_bfloat16>(args, kp, params.num_parts, stream)
                            : launch_for_rows<__half>(args, kp, params.num_parts, stream);
  if (e != cudaSuccess) return e;
  return launch_combine(args, kp, params.num_parts, stream);
}

cudaError_t launch_decode_padded(const DecodeArgs& args, const int32_t* plan, PlanParams params,
                                 void* workspace, cudaStream_t stream) {
  const KernelParams kp = make_params(args, plan, workspace, params.num_parts);
  const cudaError_t e =
      args.problem.q_dtype == DType::kBF16
          ? launch_etap_kernel<64, __nv_bfloat16, PaddedConsumer>(args, kp, params.num_parts, stream)
          : launch_etap_kernel<64, __half, PaddedConsumer>(args, kp, params.num_parts, stream);
  if (e != cudaSuccess) return e;
  return launch_combine(args, kp, params.num_parts, stream);
}

}  // namespace etap::decoding
