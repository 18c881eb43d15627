// Host entry of the timeline tool's own instantiations of the decode kernels, compiled with ETAP_TIMELINE
// (probed_*.cu, probed_dims.cuh); plain C++ for the tool's main.
#pragma once

#include <cstdint>
#include <etap/etap.hpp>

#include "decode/kernel/params.hpp"
#include "decode/kernel/timeline_events.hpp"

namespace etap::bench::timeline {

// What a launch below ran: N (query rows per CTA) and whether it took the tiled kernel.
struct ProbedKernel {
  int32_t n = 0;
  bool tiled = false;
};

// Attaches `store` to the probed kernels of the file, then launches decode + the library's combine for
// bf16, d 576/512: the transposed kernel at N = 16 or 64 (tile rows rounded up to 16; other N:
// cudaErrorNotSupported), or the rows-on-M kernel (N = 64); untiled for one row tile, else tiled.
cudaError_t launch_probed_transposed(const DecodeArgs& args, const decoding::KernelParams& params,
                                     int32_t num_parts, const decoding::timeline::Store& store,
                                     cudaStream_t stream, ProbedKernel* launched);
cudaError_t launch_probed_rows(const DecodeArgs& args, const decoding::KernelParams& params,
                               int32_t num_parts, const decoding::timeline::Store& store, cudaStream_t stream,
                               ProbedKernel* launched);

}  // namespace etap::bench::timeline
