#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <type_traits>

#include "cuda_util.hpp"
#include "fill.hpp"

namespace etap::bench {
namespace {

constexpr int kThreads = 256;
constexpr int kMaxBlocks = 65536;

__device__ __forceinline__ uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

template <typename T>
__global__ void fill_kernel(T* dst, int64_t count, float amplitude, uint64_t seed) {
  constexpr float kInv24 = 1.0f / (1 << 24);
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < count; i += stride) {
    const float u = static_cast<float>(splitmix64(seed ^ (i * 0xD1B54A32D192ED03ull)) >> 40) * kInv24;
    float v = (2.f * u - 1.f) * amplitude;
    // Zeros would let a GEMM or a kernel skip work it must do.
    if (v == 0.f) v = amplitude * 0x1p-10f;
    if constexpr (std::is_same_v<T, __nv_bfloat16>)
      dst[i] = __float2bfloat16_rn(v);
    else
      dst[i] = __float2half_rn(v);
  }
}

// FP8 cache rows of `row_bytes`: e4m3 codes of magnitude in [2^-6, 1.875] (exponent field 1..7: never NaN),
// and for DeepSeek-V3.2's 656-byte token fp32 scales of 1/4 at [512, 528) and bf16 RoPE at [528, 656).
__global__ void fill_fp8_kernel(uint8_t* dst, int64_t count, int row_bytes, bool v32, uint64_t seed) {
  constexpr int kScaleOffset = 512, kRopeOffset = 528;
  constexpr uint32_t kScaleBits = 0x3E800000u;  // 1/4
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < count; i += stride) {
    const int col = static_cast<int>(i % row_bytes);
    const uint64_t r = splitmix64(seed ^ (i * 0xD1B54A32D192ED03ull));
    uint8_t byte;
    if (v32 && col >= kScaleOffset && col < kRopeOffset) {
      byte = static_cast<uint8_t>(kScaleBits >> (8 * ((col - kScaleOffset) % 4)));
    } else if (v32 && col >= kRopeOffset) {
      // bf16 with exponent 121..124 (|v| in [2^-6, 2^-2)): low byte random, high byte sign | exponent bits.
      byte = (col - kRopeOffset) % 2 == 0 ? static_cast<uint8_t>(r)
                                          : static_cast<uint8_t>((r >> 8 & 0x80) | 0x3C | (r >> 16 & 0x1));
    } else {
      byte = static_cast<uint8_t>((r & 0x80) | (1 + (r >> 8) % 7) << 3 | (r >> 16 & 0x7));
    }
    dst[i] = byte;
  }
}

}  // namespace

void fill_fp8_cache(void* dst, int64_t rows, int row_bytes, bool v32, uint64_t seed, cudaStream_t stream) {
  const int64_t count = rows * row_bytes;
  if (count <= 0) return;
  const int64_t blocks64 = (count + kThreads - 1) / kThreads;
  const int blocks = static_cast<int>(blocks64 < kMaxBlocks ? blocks64 : kMaxBlocks);
  fill_fp8_kernel<<<blocks, kThreads, 0, stream>>>(static_cast<uint8_t*>(dst), count, row_bytes, v32, seed);
  ETAP_BENCH_CUDA(cudaGetLastError());
}

void fill_random_half(void* dst, int64_t count, HalfType type, float amplitude, uint64_t seed,
                      cudaStream_t stream) {
  if (count <= 0) return;
  const int64_t blocks64 = (count + kThreads - 1) / kThreads;
  const int blocks = static_cast<int>(blocks64 < kMaxBlocks ? blocks64 : kMaxBlocks);
  if (type == HalfType::kBF16)
    fill_kernel<<<blocks, kThreads, 0, stream>>>(static_cast<__nv_bfloat16*>(dst), count, amplitude, seed);
  else
    fill_kernel<<<blocks, kThreads, 0, stream>>>(static_cast<__half*>(dst), count, amplitude, seed);
  ETAP_BENCH_CUDA(cudaGetLastError());
}

}  // namespace etap::bench
