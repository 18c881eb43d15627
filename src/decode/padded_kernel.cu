// Instantiations of the padded (non-transposed) benchmark baseline.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "decode/kernel_launch.cuh"

namespace etap::decoding {
template cudaError_t launch_etap_kernel<64, __nv_bfloat16, PaddedConsumer>(const DecodeArgs&,
                                                                           const KernelParams&, int32_t,
                                                                           cudaStream_t);
template cudaError_t launch_etap_kernel<64, __half, PaddedConsumer>(const DecodeArgs&, const KernelParams&,
                                                                    int32_t, cudaStream_t);
}  // namespace etap::decoding
