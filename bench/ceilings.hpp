// The device's own ceilings, measured once per run (docs/PERF.md, "Performance method"): copy bandwidth,
// read-only streaming bandwidth and the bf16 GEMM rate.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "cublas_handle.hpp"
#include "record.hpp"

namespace etap::bench {

struct CeilingSpec {
  int64_t stream_bytes = int64_t{1} << 30;  // ≥ 1 GiB: far beyond any L2
  int64_t gemm_n = 8192;                    // m = n = k
  int warmup = 3;
  int iters = 20;
};

Ceilings measure_ceilings(int device, CublasHandle& cublas, cudaStream_t stream,
                          const CeilingSpec& spec = {});

}  // namespace etap::bench
