// The decode kernel's host entry per element type; defined with the kernels in src/decode/kernel/kernel_*.cu.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <etap/etap.hpp>

#include "decode/kernel/params.hpp"

namespace etap::decoding {

// N, the query rows of a CTA: R rounded up to a multiple of 16 (the wgmma N of both consumer warpgroups).
inline constexpr int32_t kRowGranule = 16;
inline int32_t rows_per_cta(int32_t rows) {
  return (rows + kRowGranule - 1) / kRowGranule * kRowGranule;
}

// Launches etap_decode_kernel for N = rows_per_cta(params.rows) ∈ {16, 32, 48, 64}, element type T.
template <typename T>
cudaError_t launch_decode_kernel(const DecodeArgs& args, const KernelParams& params, int32_t num_parts,
                                 cudaStream_t stream);

extern template cudaError_t launch_decode_kernel<__nv_bfloat16>(const DecodeArgs&, const KernelParams&,
                                                                int32_t, cudaStream_t);
extern template cudaError_t launch_decode_kernel<__half>(const DecodeArgs&, const KernelParams&, int32_t,
                                                         cudaStream_t);

}  // namespace etap::decoding
