// The DeepSeek-V3.2 FP8 kernels (656-byte tokens: e4m3 latent, group scales, bf16 RoPE), bf16 queries.
#include "decode/launch/kernel_launch.cuh"

namespace etap::decoding {
template cudaError_t launch_fp8_kernel<__nv_bfloat16, CacheFormat::kFp8V32>(const DecodeArgs&,
                                                                            const KernelParams&, int32_t,
                                                                            cudaStream_t);
}  // namespace etap::decoding
