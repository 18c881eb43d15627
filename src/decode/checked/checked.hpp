// Checked mode: verifies page ids and seqlens on the device and reports the first offending request.
#pragma once

#include <cuda_runtime_api.h>

#include <etap/etap.hpp>

namespace etap::decoding {

// Synchronises `stream`. Returns kCheckFailed with a message naming the request, page and value.
Status run_checks(const DecodeArgs& args, void* workspace, cudaStream_t stream);

// Synchronises `stream`. kCheckFailed when the plan buffer's header was not written by etap::plan for this
// problem on this device (batch or part count differ): decode would then leave out and lse unwritten.
Status check_plan(const void* plan_buffer, int32_t batch, int32_t num_parts, cudaStream_t stream);

}  // namespace etap::decoding
