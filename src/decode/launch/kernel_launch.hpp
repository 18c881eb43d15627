// The decode kernel's host entry per element type and head dims; defined with the kernels in
// src/decode/kernel/kernel_*.cu (one file per instantiation set, so that they compile in parallel).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <etap/etap.hpp>

#include "decode/kernel/config.hpp"
#include "decode/kernel/params.hpp"

namespace etap::decoding {

// N, the query rows of a CTA: a row tile rounded up to a multiple of 16 (the wgmma N of both consumer
// warpgroups).
inline constexpr int32_t kRowGranule = 16;
inline int32_t rows_per_cta(int32_t rows) {
  return (rows + kRowGranule - 1) / kRowGranule * kRowGranule;
}

// Launches etap_decode_kernel for N = rows_per_cta(tile rows) ∈ {16, 32, 48, 64}, element type T, head
// dims Dims, over the grid (num_parts, row tiles).
template <typename T, class Dims>
cudaError_t launch_decode_kernel(const DecodeArgs& args, const KernelParams& params, int32_t num_parts,
                                 cudaStream_t stream);

#define ETAP_DECODE_KERNELS(T, Dims)                                                                         \
  extern template cudaError_t launch_decode_kernel<T, Dims>(const DecodeArgs&, const KernelParams&, int32_t, \
                                                            cudaStream_t);
ETAP_DECODE_KERNELS(__nv_bfloat16, DimsMla)
ETAP_DECODE_KERNELS(__half, DimsMla)
ETAP_DECODE_KERNELS(__nv_bfloat16, DimsLatent)
ETAP_DECODE_KERNELS(__half, DimsLatent)
ETAP_DECODE_KERNELS(__nv_bfloat16, DimsRank256)
ETAP_DECODE_KERNELS(__half, DimsRank256)
#undef ETAP_DECODE_KERNELS

// The FP8 kernels (d_qk 576 / d_v 512): KV cache in kFormat, q/out in T (V3.2: bf16 only, its RoPE is bf16).
template <typename T, CacheFormat kFormat>
cudaError_t launch_fp8_kernel(const DecodeArgs& args, const KernelParams& params, int32_t num_parts,
                              cudaStream_t stream);
extern template cudaError_t launch_fp8_kernel<__nv_bfloat16, CacheFormat::kFp8PerTensor>(const DecodeArgs&,
                                                                                         const KernelParams&,
                                                                                         int32_t,
                                                                                         cudaStream_t);
extern template cudaError_t launch_fp8_kernel<__half, CacheFormat::kFp8PerTensor>(const DecodeArgs&,
                                                                                  const KernelParams&,
                                                                                  int32_t, cudaStream_t);
extern template cudaError_t launch_fp8_kernel<__nv_bfloat16, CacheFormat::kFp8V32>(const DecodeArgs&,
                                                                                   const KernelParams&,
                                                                                   int32_t, cudaStream_t);

}  // namespace etap::decoding
