// The probed rows-on-M kernels (bf16, d 576/512, untiled and tiled); built with ETAP_TIMELINE.
#include <cuda_bf16.h>

#include "bench/timeline/probed.hpp"
#include "bench/timeline/probed_dims.cuh"
#include "decode/combine/combine.cuh"
#include "decode/kernel/timeline.cuh"
#include "decode/launch/rows_launch.cuh"

#ifndef ETAP_TIMELINE
#error "probed_rows.cu is the timeline tool's: build it with ETAP_TIMELINE"
#endif

namespace etap::bench::timeline {

cudaError_t launch_probed_rows(const DecodeArgs& args, const decoding::KernelParams& kp, int32_t num_parts,
                               const decoding::timeline::Store& store, cudaStream_t stream,
                               ProbedKernel* launched) {
  static_assert(decoding::timeline::kRoleThreads == hopper::kWarpgroupThreads);
  if (cudaError_t e = decoding::timeline::attach(store, stream); e != cudaSuccess) return e;
  // The library's own rows-on-M launcher template (untiled for one tile, else tiled), on the probed dims.
  launched->n = decoding::kMaxTileRows;
  launched->tiled = kp.tiling.num_tiles != 1;
  if (cudaError_t e = decoding::launch_rows_kernel<__nv_bfloat16, ProbedDimsMla>(args, kp, num_parts, stream);
      e != cudaSuccess)
    return e;
  return decoding::launch_combine(args, kp, num_parts, stream);
}

}  // namespace etap::bench::timeline
