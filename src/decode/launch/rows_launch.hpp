// Host entry of the rows-on-M kernel (decode/kernel/rows_consumer.cuh) per element type and head dims,
// defined in src/decode/kernel/kernel_rows_*.cu; kernel_choice.hpp says when it runs.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <etap/etap.hpp>

#include "decode/kernel/config.hpp"
#include "decode/kernel/params.hpp"
#include "decode/launch/kernel_choice.hpp"

namespace etap::decoding {

// Launches etap_decode_kernel with the rows-on-M consumers (N = 64) over the grid (num_parts, row tiles).
template <typename T, class Dims>
cudaError_t launch_rows_kernel(const DecodeArgs& args, const KernelParams& params, int32_t num_parts,
                               cudaStream_t stream);

#define ETAP_ROWS_KERNELS(T, Dims)                                                                         \
  extern template cudaError_t launch_rows_kernel<T, Dims>(const DecodeArgs&, const KernelParams&, int32_t, \
                                                          cudaStream_t);
ETAP_ROWS_KERNELS(__nv_bfloat16, DimsMla)
ETAP_ROWS_KERNELS(__half, DimsMla)
ETAP_ROWS_KERNELS(__nv_bfloat16, DimsLatent)
ETAP_ROWS_KERNELS(__half, DimsLatent)
ETAP_ROWS_KERNELS(__nv_bfloat16, DimsRank256)
ETAP_ROWS_KERNELS(__half, DimsRank256)
#undef ETAP_ROWS_KERNELS

}  // namespace etap::decoding
