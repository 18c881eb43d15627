// GPU discovery of the etap command.
#pragma once

#include <cuda_runtime_api.h>

#include <string>

namespace etap::cli {

// The first device etap can run on (compute capability 9.0), or why there is none.
struct GpuChoice {
  int device = -1;  // -1: none; `reason` says why
  std::string reason;
  cudaDeviceProp prop{};
  bool found() const { return device >= 0; }
};
GpuChoice find_sm90_gpu();

// "NVIDIA H100 80GB HBM3 (device 0, sm_90, 132 SMs, 79.1 GiB)"
std::string describe_gpu(int device, const cudaDeviceProp& prop);

// "13.0", or "none" for a zero version.
std::string cuda_version_string(int version);

}  // namespace etap::cli
