// The rows-on-M kernels for fp16, d_qk = 320 (one file per element type and head dims: they compile in
// parallel).
#include "decode/launch/rows_launch.cuh"

namespace etap::decoding {
template cudaError_t launch_rows_kernel<__half, DimsRank256>(const DecodeArgs&, const KernelParams&, int32_t,
                                                             cudaStream_t);
}  // namespace etap::decoding
