// Fills the kernel parameters and launches decode (kernel_launch.hpp) + combine.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "common/constants.hpp"
#include "decode/combine/combine.cuh"
#include "decode/launch/kernel_launch.hpp"
#include "decode/launch/launch.hpp"

namespace etap::decoding {

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
  p.scale_log2 = args.softmax_scale * kLog2e;
  p.lse_out_scale = args.lse_base == LseBase::kNatural ? kLn2 : 1.f;
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

cudaError_t launch_decode(const DecodeArgs& args, const int32_t* plan, PlanParams params, void* workspace,
                          cudaStream_t stream) {
  const KernelParams kp = make_params(args, plan, workspace, params.num_parts);
  const cudaError_t e = args.problem.q_dtype == DType::kBF16
                            ? launch_decode_kernel<__nv_bfloat16>(args, kp, params.num_parts, stream)
                            : launch_decode_kernel<__half>(args, kp, params.num_parts, stream);
  if (e != cudaSuccess) return e;
  return launch_combine(args, kp, params.num_parts, stream);
}

}  // namespace etap::decoding
