#include "gpu.hpp"

#include <cstdio>

namespace etap::cli {
namespace {

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;
constexpr int kRequiredMajor = 9, kRequiredMinor = 0;

}  // namespace

std::string cuda_version_string(int version) {
  if (version <= 0) return "none";
  return std::to_string(version / 1000) + "." + std::to_string(version % 1000 / 10);
}

std::string describe_gpu(int device, const cudaDeviceProp& prop) {
  char text[512];  // prop.name holds up to 256 characters
  std::snprintf(text, sizeof(text), "%s (device %d, sm_%d%d, %d SMs, %.1f GiB)", prop.name, device,
                prop.major, prop.minor, prop.multiProcessorCount,
                static_cast<double>(prop.totalGlobalMem) / kGiB);
  return text;
}

GpuChoice find_sm90_gpu() {
  GpuChoice choice;
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    cudaGetLastError();
    int driver = 0;
    cudaDriverGetVersion(&driver);
    choice.reason = driver == 0 ? std::string("no NVIDIA driver is loaded: ") + cudaGetErrorString(err)
                                : std::string("CUDA reports: ") + cudaGetErrorString(err);
    return choice;
  }
  if (count == 0) {
    choice.reason = "no CUDA device is visible";
    return choice;
  }
  std::string others;
  for (int d = 0; d < count; ++d) {
    cudaDeviceProp prop{};
    if (cudaGetDeviceProperties(&prop, d) != cudaSuccess) {
      cudaGetLastError();
      continue;
    }
    if (prop.major == kRequiredMajor && prop.minor == kRequiredMinor) {
      choice.device = d;
      choice.prop = prop;
      return choice;
    }
    others += std::string(others.empty() ? "" : ", ") + prop.name + " is sm_" + std::to_string(prop.major) +
              std::to_string(prop.minor);
  }
  choice.reason = others.empty() ? "device properties could not be read" : others;
  return choice;
}

}  // namespace etap::cli
