// Instantiations of the ETAP kernel for bf16 (one file per dtype keeps builds parallel).
#include <cuda_bf16.h>

#include "decode/kernel_launch.cuh"

namespace etap::decoding {
template cudaError_t launch_etap_kernel<16, __nv_bfloat16>(const DecodeArgs&, const KernelParams&, int32_t,
                                                           cudaStream_t);
template cudaError_t launch_etap_kernel<32, __nv_bfloat16>(const DecodeArgs&, const KernelParams&, int32_t,
                                                           cudaStream_t);
template cudaError_t launch_etap_kernel<48, __nv_bfloat16>(const DecodeArgs&, const KernelParams&, int32_t,
                                                           cudaStream_t);
template cudaError_t launch_etap_kernel<64, __nv_bfloat16>(const DecodeArgs&, const KernelParams&, int32_t,
                                                           cudaStream_t);
}  // namespace etap::decoding
