// CUDA helpers shared by the tests, the etap command and the benchmark: error checks that throw, and owning
// (move-only) device buffers, streams and events.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace etap::testing {

struct CudaError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// "<what> failed: <error> (<file>:<line>)", for CUDA and the CUDA libraries (cuBLAS) alike.
[[noreturn]] inline void throw_cuda_error(const char* what, const char* error, const char* file, int line) {
  throw CudaError(std::string(what) + " failed: " + error + " (" + file + ":" + std::to_string(line) + ")");
}

inline void cuda_check(cudaError_t e, const char* what, const char* file, int line) {
  if (e != cudaSuccess) throw_cuda_error(what, cudaGetErrorString(e), file, line);
}

// Throws CudaError naming the expression, the CUDA error and the place.
#define ETAP_CUDA_CHECK(expr) ::etap::testing::cuda_check((expr), #expr, __FILE__, __LINE__)

// Owning device allocation, move-only; bytes == 0 holds nothing. Throws CudaError when cudaMalloc fails.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(std::size_t bytes) : bytes_(bytes) {
    if (bytes_) ETAP_CUDA_CHECK(cudaMalloc(&ptr_, bytes_));
  }
  // A buffer holding a copy of `host`.
  template <typename T>
  explicit DeviceBuffer(const std::vector<T>& host) : DeviceBuffer(host.size() * sizeof(T)) {
    if (bytes_) ETAP_CUDA_CHECK(cudaMemcpy(ptr_, host.data(), bytes_, cudaMemcpyHostToDevice));
  }
  DeviceBuffer(DeviceBuffer&& o) noexcept
      : ptr_(std::exchange(o.ptr_, nullptr)), bytes_(std::exchange(o.bytes_, 0)) {}
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    if (this != &o) {
      reset();
      ptr_ = std::exchange(o.ptr_, nullptr);
      bytes_ = std::exchange(o.bytes_, 0);
    }
    return *this;
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer() { reset(); }

  void reset() {
    if (ptr_) cudaFree(ptr_);
    ptr_ = nullptr;
    bytes_ = 0;
  }
  template <typename T = void>
  T* get() const {
    return static_cast<T*>(ptr_);
  }
  std::size_t bytes() const { return bytes_; }

  // The first `count` elements, copied back to the host.
  template <typename T>
  std::vector<T> download(std::size_t count) const {
    std::vector<T> host(count);
    if (count) ETAP_CUDA_CHECK(cudaMemcpy(host.data(), ptr_, count * sizeof(T), cudaMemcpyDeviceToHost));
    return host;
  }

 private:
  void* ptr_ = nullptr;
  std::size_t bytes_ = 0;
};

class Stream {
 public:
  Stream() { ETAP_CUDA_CHECK(cudaStreamCreateWithFlags(&s_, cudaStreamNonBlocking)); }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  ~Stream() { cudaStreamDestroy(s_); }
  cudaStream_t get() const { return s_; }

 private:
  cudaStream_t s_ = nullptr;
};

class Event {
 public:
  Event() { ETAP_CUDA_CHECK(cudaEventCreate(&e_)); }
  Event(Event&& o) noexcept : e_(std::exchange(o.e_, nullptr)) {}
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
  ~Event() {
    if (e_) cudaEventDestroy(e_);
  }
  cudaEvent_t get() const { return e_; }

 private:
  cudaEvent_t e_ = nullptr;
};

// Microseconds between two completed events.
inline double elapsed_us(const Event& start, const Event& stop) {
  float ms = 0.f;
  ETAP_CUDA_CHECK(cudaEventElapsedTime(&ms, start.get(), stop.get()));
  return 1e3 * ms;
}

}  // namespace etap::testing
