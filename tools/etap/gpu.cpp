#include "gpu.hpp"

#include <algorithm>
#include <cstdio>
#include <stdexcept>

namespace etap::cli {
namespace {

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;
constexpr int kRequiredMajor = 9, kRequiredMinor = 0;
// Used when the device does not report its L2 size.
constexpr std::size_t kFallbackL2Bytes = 64u << 20;
constexpr int kL2FlushFactor = 2;

}  // namespace

void cuda_check(cudaError_t err, const char* what) {
  if (err != cudaSuccess) throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(err));
}

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

GpuTimer::GpuTimer(const cudaDeviceProp& prop, cudaStream_t stream) : stream_(stream) {
  const std::size_t l2 = prop.l2CacheSize > 0 ? static_cast<std::size_t>(prop.l2CacheSize) : kFallbackL2Bytes;
  flush_bytes_ = kL2FlushFactor * l2;
  cuda_check(cudaMalloc(&flush_buffer_, flush_bytes_), "cudaMalloc (L2 flush buffer)");
}

GpuTimer::~GpuTimer() {
  cudaFree(flush_buffer_);
}

void GpuTimer::flush_l2() {
  cuda_check(cudaMemsetAsync(flush_buffer_, 0, flush_bytes_, stream_), "cudaMemsetAsync (L2 flush)");
}

double GpuTimer::median_of_pairs(const std::vector<cudaEvent_t>& events) {
  cuda_check(cudaStreamSynchronize(stream_), "running the timed calls");
  std::vector<float> ms(events.size() / 2);
  for (std::size_t i = 0; i < ms.size(); ++i)
    cuda_check(cudaEventElapsedTime(&ms[i], events[2 * i], events[2 * i + 1]), "cudaEventElapsedTime");
  for (auto e : events) cudaEventDestroy(e);
  if (ms.empty()) return 0;
  std::nth_element(ms.begin(), ms.begin() + ms.size() / 2, ms.end());
  return 1000.0 * ms[ms.size() / 2];
}

}  // namespace etap::cli
