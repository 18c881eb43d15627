// The padded baseline's kernels (N = 64 only; dense, and FP8 caches with bf16 queries) and its launch:
// decode, then the product's combine.
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
  using decoding::CacheFormat;
  const bool bf16 = args.problem.q_dtype == DType::kBF16;
  cudaError_t e = cudaErrorNotSupported;
  switch (pb.kv_format) {
    case KvFormat::kDense:
      e = bf16 ? launch_etap_kernel<64, __nv_bfloat16, decoding::DimsMla, baseline::PaddedConsumer>(
                     args, kp, params.num_parts, stream)
               : launch_etap_kernel<64, __half, decoding::DimsMla, baseline::PaddedConsumer>(
                     args, kp, params.num_parts, stream);
      break;
    case KvFormat::kFp8PerTensor:  // the FP8 converter warpgroup (fp8_convert.cuh), bf16 queries: the padded
                                   // consumer reads the 16-bit ring, not the product's e4m3 one
      if (bf16)
        e = launch_etap_kernel<64, __nv_bfloat16, decoding::DimsMla, baseline::PaddedConsumer, false,
                               CacheFormat::kFp8PerTensor, /*kRegisterFp8Allowed=*/false>(
            args, kp, params.num_parts, stream);
      break;
    case KvFormat::kFp8DeepSeekV32:
      if (bf16)
        e = launch_etap_kernel<64, __nv_bfloat16, decoding::DimsMla, baseline::PaddedConsumer, false,
                               CacheFormat::kFp8V32>(args, kp, params.num_parts, stream);
      break;
  }
  if (e != cudaSuccess) return e;
  return decoding::launch_combine(args, kp, params.num_parts, stream);
}

}  // namespace etap::bench
