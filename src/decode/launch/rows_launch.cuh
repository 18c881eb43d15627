// Definition of launch_rows_kernel, included only by its instantiation files
// (src/decode/kernel/kernel_rows_*.cu).
#pragma once

#include "decode/kernel/rows_consumer.cuh"
#include "decode/launch/kernel_launch.cuh"
#include "decode/launch/rows_launch.hpp"

namespace etap::decoding {

template <typename T, class Dims>
cudaError_t launch_rows_kernel(const DecodeArgs& args, const KernelParams& params, int32_t num_parts,
                               cudaStream_t stream) {
  // One tile (h_kv = 1, s_q·h_q = 64): the untiled form (CtaRows<false>), as for the transposed kernels.
  return params.tiling.num_tiles == 1
             ? launch_etap_kernel<kMaxTileRows, T, Dims, RowsConsumer, false>(args, params, num_parts, stream)
             : launch_etap_kernel<kMaxTileRows, T, Dims, RowsConsumer, true>(args, params, num_parts, stream);
}

}  // namespace etap::decoding
