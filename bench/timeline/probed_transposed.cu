// The probed transposed kernels (bf16, d 576/512, N = 16 and 64, untiled and tiled); built with
// ETAP_TIMELINE.
#include <cuda_bf16.h>

#include "bench/timeline/probed.hpp"
#include "bench/timeline/probed_dims.cuh"
#include "decode/combine/combine.cuh"
#include "decode/kernel/timeline.cuh"
#include "decode/launch/kernel_launch.cuh"

#ifndef ETAP_TIMELINE
#error "probed_transposed.cu is the timeline tool's: build it with ETAP_TIMELINE"
#endif

namespace etap::bench::timeline {

namespace {

template <int kN>
cudaError_t launch_n(const DecodeArgs& args, const decoding::KernelParams& kp, int32_t num_parts,
                     cudaStream_t stream) {
  using decoding::Consumer;
  using decoding::launch_etap_kernel;
  return decoding::untiled_kernels(kp)
             ? launch_etap_kernel<kN, __nv_bfloat16, ProbedDimsMla, Consumer, false>(args, kp, num_parts,
                                                                                     stream)
             : launch_etap_kernel<kN, __nv_bfloat16, ProbedDimsMla, Consumer, true>(args, kp, num_parts,
                                                                                    stream);
}

}  // namespace

cudaError_t launch_probed_transposed(const DecodeArgs& args, const decoding::KernelParams& kp,
                                     int32_t num_parts, const decoding::timeline::Store& store,
                                     cudaStream_t stream, ProbedKernel* launched) {
  static_assert(decoding::timeline::kRoleThreads == hopper::kWarpgroupThreads);
  if (cudaError_t e = decoding::timeline::attach(store, stream); e != cudaSuccess) return e;
  cudaError_t e = cudaErrorNotSupported;
  launched->n = decoding::rows_per_cta(kp.tiling.tile_rows());
  launched->tiled = !decoding::untiled_kernels(kp);
  switch (launched->n) {
    case 16:
      e = launch_n<16>(args, kp, num_parts, stream);
      break;
    case 64:
      e = launch_n<64>(args, kp, num_parts, stream);
      break;
    default:
      break;
  }
  if (e != cudaSuccess) return e;
  return decoding::launch_combine(args, kp, num_parts, stream);
}

}  // namespace etap::bench::timeline
