// The fp16 kernels (one file per element type: the two compile in parallel).
#include "decode/launch/kernel_launch.cuh"

namespace etap::decoding {
template cudaError_t launch_decode_kernel<__half>(const DecodeArgs&, const KernelParams&, int32_t,
                                                  cudaStream_t);
}  // namespace etap::decoding
