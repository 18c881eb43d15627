// The padded (rows-on-M) baseline: the decode machinery with the query rows on wgmma's M, padded to 64
// (FlashMLA's non-transposed layout). Benchmark only; never part of libetap.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <etap/etap.hpp>

#include "decode/plan/plan.hpp"

namespace etap::bench {

// Same plan buffer and workspace as etap::decode (plan with etap::plan, params from its header).
cudaError_t launch_decode_padded(const DecodeArgs& args, const int32_t* plan, decoding::PlanParams params,
                                 void* workspace, cudaStream_t stream);

}  // namespace etap::bench
