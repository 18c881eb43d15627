// The FP8 per-tensor kernels with bf16 queries (d_qk = 576): e4m3 cache, one fp32 scale.
#include "decode/launch/kernel_launch.cuh"

namespace etap::decoding {
// Two FP8 blocks in flight where the separate staging buffer fits (config.hpp): N = 16 and 32.
template <int kN>
using PerTensor = KernelConfig<kN, __nv_bfloat16, DimsMla, true, CacheFormat::kFp8PerTensor>;
static_assert(PerTensor<16>::kSeparateStaging && PerTensor<32>::kSeparateStaging);
static_assert(!PerTensor<48>::kSeparateStaging && !PerTensor<64>::kSeparateStaging);

template cudaError_t launch_fp8_kernel<__nv_bfloat16, CacheFormat::kFp8PerTensor>(const DecodeArgs&,
                                                                                  const KernelParams&,
                                                                                  int32_t, cudaStream_t);
}  // namespace etap::decoding
