// Shared by GPU tests: skip with a visible reason when no compute-capability-9.0 device is present.
#pragma once

#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <string>

#include "testing/cuda.hpp"

namespace etap::test {

// Empty string when an sm_90 device is usable, otherwise the reason to skip.
inline std::string gpu_skip_reason() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
    cudaGetLastError();
    return "no CUDA device on this machine (GPU tests run on the device machine: tools/gpu-check.sh)";
  }
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, 0) != cudaSuccess) return "cudaGetDeviceProperties failed";
  if (prop.major != 9 || prop.minor != 0)
    return "etap needs compute capability 9.0; found " + std::to_string(prop.major) + "." +
           std::to_string(prop.minor);
  return {};
}

// The shared move-only device allocation (throws testing::CudaError when cudaMalloc fails).
using DeviceBuffer = ::etap::testing::DeviceBuffer;

#define ETAP_REQUIRE_SM90()                                               \
  do {                                                                    \
    const std::string etap_skip_reason = ::etap::test::gpu_skip_reason(); \
    if (!etap_skip_reason.empty()) GTEST_SKIP() << etap_skip_reason;      \
  } while (0)

#define ETAP_CUDA_OK(expr) ASSERT_EQ((expr), cudaSuccess) << cudaGetErrorString(cudaGetLastError())

}  // namespace etap::test
