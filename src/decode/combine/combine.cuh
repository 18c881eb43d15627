// Combine: merges the fp32 partial results of split requests (LSE-weighted) into out and lse.
#pragma once

#include <etap/etap.hpp>

#include "decode/kernel/params.hpp"

namespace etap::decoding {

// Launched after the decode kernel with programmatic dependent launch; blocks past the number of split
// requests (known only on the device) exit at once.
cudaError_t launch_combine(const DecodeArgs& args, const KernelParams& params, int32_t num_parts,
                           cudaStream_t stream);

}  // namespace etap::decoding
