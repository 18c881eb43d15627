// Random device data for the benchmark's problems and ceilings, generated on the GPU (gigabytes of KV cache
// would take seconds on the host).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace etap::bench {

enum class HalfType { kBF16, kFP16 };

// dst[i] = uniform in [-amplitude, amplitude], never exactly zero, a pure function of (seed, i).
void fill_random_half(void* dst, int64_t count, HalfType type, float amplitude, uint64_t seed,
                      cudaStream_t stream);

// `rows` FP8 cache rows of `row_bytes` (576 e4m3, or DeepSeek-V3.2's 656-byte token when v32): finite
// codes, a pure function of (seed, byte index).
void fill_fp8_cache(void* dst, int64_t rows, int row_bytes, bool v32, uint64_t seed, cudaStream_t stream);

}  // namespace etap::bench
