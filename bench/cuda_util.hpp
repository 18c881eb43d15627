// The benchmark's names for the shared CUDA helpers of src/testing/cuda.hpp.
#pragma once

#include "testing/cuda.hpp"

namespace etap::bench {

using testing::CudaError;
using testing::DeviceBuffer;
using testing::elapsed_us;
using testing::Event;
using testing::Stream;

}  // namespace etap::bench

#define ETAP_BENCH_CUDA(expr) ETAP_CUDA_CHECK(expr)
