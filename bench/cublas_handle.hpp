// One cuBLAS handle for the benchmark, with a preallocated workspace so that cuBLAS never allocates while a
// CUDA graph is being captured.
#pragma once

#include <cublas_v2.h>

#include <string>

#include "cuda_util.hpp"

namespace etap::bench {

inline void cublas_check(cublasStatus_t s, const char* what, const char* file, int line) {
  if (s != CUBLAS_STATUS_SUCCESS) testing::throw_cuda_error(what, cublasGetStatusString(s), file, line);
}

#define ETAP_BENCH_CUBLAS(expr) ::etap::bench::cublas_check((expr), #expr, __FILE__, __LINE__)

class CublasHandle {
 public:
  static constexpr std::size_t kWorkspaceBytes = 64u << 20;  // ample for cuBLAS's Hopper kernels

  CublasHandle() : workspace_(kWorkspaceBytes) {
    ETAP_BENCH_CUBLAS(cublasCreate(&h_));
    ETAP_BENCH_CUBLAS(cublasSetWorkspace(h_, workspace_.get(), workspace_.bytes()));
  }
  CublasHandle(const CublasHandle&) = delete;
  CublasHandle& operator=(const CublasHandle&) = delete;
  ~CublasHandle() { cublasDestroy(h_); }

  cublasHandle_t on(cudaStream_t stream) {
    ETAP_BENCH_CUBLAS(cublasSetStream(h_, stream));
    // cublasSetStream resets the workspace to the default pool: hand ours back.
    ETAP_BENCH_CUBLAS(cublasSetWorkspace(h_, workspace_.get(), workspace_.bytes()));
    return h_;
  }
  int version() {
    int v = 0;
    cublasGetVersion(h_, &v);
    return v;
  }

 private:
  DeviceBuffer workspace_;
  cublasHandle_t h_ = nullptr;
};

}  // namespace etap::bench
