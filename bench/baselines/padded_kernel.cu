// The padded baseline's kernels (N = 64 only) and its launch: decode, then the product's combine.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "baselines/padded.hpp"
#include "baselines/padded_consumer.cuh"
#include "decode/combine/combine.cuh"
#include "decode/launch/kernel_launch.cuh"
#include "decode/launch/launch.hpp"

namespace etap::bench {

cudaError_t launch_decode_padded(const DecodeArgs& args, const int32_t* plan, decoding::PlanParams params,
                                 void* workspace, cudaStream_t stream) {
  using decoding::launch_etap_kernel;
  const DecodeProblem& pb = args.problem;
  // The baseline is built for one 64-row tile of the MLA shape over 64-token pages.
  if (pb.s_q * pb.h_q > decoding::kMaxTileRows || pb.h_kv != 1 || pb.page_size != decoding::kBlockTokens ||
      pb.d_qk != mla::kDqk || pb.d_v != mla::kDv)
    return cudaErrorNotSupported;
  const decoding::KernelParams kp = decoding::make_params(args, plan, workspace, params.num_parts);
  const cudaError_t e =
      args.problem.q_dtype == DType::kBF16
          ? launch_etap_kernel<64, __nv_bfloat16, decoding::DimsMla, baseline::PaddedConsumer>(
                args, kp, params.num_parts, stream)
          : launch_etap_kernel<64, __half, decoding::DimsMla, baseline::PaddedConsumer>(
                args, kp, params.num_parts, stream);
  if (e != cudaSuccess) return e;
  return decoding::launch_combine(args, kp, params.num_parts, stream);
}

}  // namespace etap::bench
