// Checked mode: verifies page ids and seqlens on the device and reports the first offending request.
#pragma once

#include <cuda_runtime_api.h>

#include <etap/etap.hpp>

namespace etap::decoding {

// Synchronises `stream`. Returns kCheckFailed with a message naming the request, page and value.
Status run_checks(const DecodeArgs& args, void* workspace, cudaStream_t stream);

}  // namespace etap::decoding
