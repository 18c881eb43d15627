// Instantiations of the ETAP kernel for fp16 (one file per dtype keeps builds parallel).
#include <cuda_fp16.h>

#include "decode/kernel_launch.cuh"

namespace etap::decoding {
template cudaError_t launch_etap_kernel<16, __half>(const DecodeArgs&, const KernelParams&, int32_t,
                                                    cudaStream_t);
template cudaError_t launch_etap_kernel<32, __half>(const DecodeArgs&, const KernelParams&, int32_t,
                                                    cudaStream_t);
template cudaError_t launch_etap_kernel<48, __half>(const DecodeArgs&, const KernelParams&, int32_t,
                                                    cudaStream_t);
template cudaError_t launch_etap_kernel<64, __half>(const DecodeArgs&, const KernelParams&, int32_t,
                                                    cudaStream_t);
}  // namespace etap::decoding
