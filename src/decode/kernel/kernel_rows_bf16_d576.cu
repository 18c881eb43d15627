// The rows-on-M kernels for bf16, d_qk = 576 (one file per element type and head dims: they compile in
// parallel).
#include "decode/launch/rows_launch.cuh"

namespace etap::decoding {
template cudaError_t launch_rows_kernel<__nv_bfloat16, DimsMla>(const DecodeArgs&, const KernelParams&,
                                                                int32_t, cudaStream_t);
}  // namespace etap::decoding
