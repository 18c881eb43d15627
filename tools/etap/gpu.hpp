// GPU discovery and timing helpers of the etap command.
#pragma once

#include <cuda_runtime_api.h>

#include <string>
#include <vector>

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

// Throws std::runtime_error("<what>: <CUDA error>") on failure.
void cuda_check(cudaError_t err, const char* what);

// Median elapsed time of event pairs recorded around repeated launches, with an L2 flush (a memset of twice
// the L2 size) before each so that no launch finds its inputs in the cache.
class GpuTimer {
 public:
  GpuTimer(const cudaDeviceProp& prop, cudaStream_t stream);
  ~GpuTimer();
  GpuTimer(const GpuTimer&) = delete;
  GpuTimer& operator=(const GpuTimer&) = delete;

  // Median microseconds of `iters` timed calls of launch(), after `warmup` untimed ones.
  template <typename Launch>
  double median_us(int warmup, int iters, Launch launch);

 private:
  void flush_l2();
  double median_of_pairs(const std::vector<cudaEvent_t>& events);
  cudaStream_t stream_;
  void* flush_buffer_ = nullptr;
  std::size_t flush_bytes_ = 0;
};

template <typename Launch>
double GpuTimer::median_us(int warmup, int iters, Launch launch) {
  for (int i = 0; i < warmup; ++i) {
    flush_l2();
    launch();
  }
  std::vector<cudaEvent_t> events(2 * static_cast<std::size_t>(iters));
  for (auto& e : events) cuda_check(cudaEventCreate(&e), "cudaEventCreate");
  for (int i = 0; i < iters; ++i) {
    flush_l2();
    cuda_check(cudaEventRecord(events[2 * i], stream_), "cudaEventRecord");
    launch();
    cuda_check(cudaEventRecord(events[2 * i + 1], stream_), "cudaEventRecord");
  }
  return median_of_pairs(events);
}

}  // namespace etap::cli
