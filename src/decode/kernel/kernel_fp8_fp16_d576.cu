// The FP8 per-tensor kernels with fp16 queries (d_qk = 576): e4m3 cache, one fp32 scale.
#include "decode/launch/kernel_launch.cuh"

namespace etap::decoding {
template <int kN>
using PerTensor = KernelConfig<kN, __half, DimsMla, true, CacheFormat::kFp8PerTensor>;
// Register FP8 (config.hpp, N ≤ 48): e4m3 stages, as many as fit; N = 64 the converter path. The converter
// path: two FP8 blocks in flight where the separate staging buffer fits, N = 16 and 32.
static_assert(!kRegisterFp8PerTensor ||
              (PerTensor<16>::kStages == 5 && PerTensor<32>::kStages == 4 && PerTensor<48>::kStages == 4 &&
               PerTensor<64>::kStages == 2 && !PerTensor<64>::kRegisterFp8));
static_assert(kRegisterFp8PerTensor ||
              (PerTensor<16>::kSeparateStaging && PerTensor<32>::kSeparateStaging &&
               !PerTensor<48>::kSeparateStaging && !PerTensor<64>::kSeparateStaging));

template cudaError_t launch_fp8_kernel<__half, CacheFormat::kFp8PerTensor>(const DecodeArgs&,
                                                                           const KernelParams&, int32_t,
                                                                           cudaStream_t);
}  // namespace etap::decoding
