#include <cuda_bf16.h>

#include "ceilings.hpp"
#include "fill.hpp"
#include "metrics.hpp"
#include "testing/timing.hpp"

namespace etap::bench {

using testing::Call;
using testing::L2Flusher;
using testing::time_calls;
namespace {

constexpr int kReadThreads = 256;
constexpr int kReadUnroll = 4;  // independent 16-byte loads in flight per thread
constexpr int kWarpSize = 32;
constexpr float kFillAmplitude = 1.0f;

// Streams `count` 16-byte words once; the XOR reduction keeps the loads alive.
__global__ void __launch_bounds__(kReadThreads)
    read_stream_kernel(const uint4* __restrict__ src, int64_t count, unsigned* __restrict__ sink) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  unsigned acc = 0;
  for (; i + (kReadUnroll - 1) * stride < count; i += kReadUnroll * stride) {
    uint4 v[kReadUnroll];
#pragma unroll
    for (int u = 0; u < kReadUnroll; ++u) v[u] = __ldg(src + i + u * stride);
#pragma unroll
    for (int u = 0; u < kReadUnroll; ++u) acc ^= v[u].x ^ v[u].y ^ v[u].z ^ v[u].w;
  }
  for (; i < count; i += stride) {
    const uint4 v = __ldg(src + i);
    acc ^= v.x ^ v.y ^ v.z ^ v.w;
  }
#pragma unroll
  for (int offset = kWarpSize / 2; offset > 0; offset /= 2) acc ^= __shfl_xor_sync(0xFFFFFFFFu, acc, offset);
  if (threadIdx.x % kWarpSize == 0) atomicXor(sink, acc);
}

double median_us(const Call& call, const CeilingSpec& spec, cudaStream_t stream) {
  return median(time_calls(call, nullptr, {spec.warmup, spec.iters}, stream));
}

}  // namespace

Ceilings measure_ceilings(int device, CublasHandle& cublas, cudaStream_t stream, const CeilingSpec& spec) {
  Ceilings c;
  c.copy_bytes = spec.stream_bytes;
  c.read_bytes = spec.stream_bytes;
  c.gemm_n = spec.gemm_n;
  {
    DeviceBuffer src(spec.stream_bytes), dst(spec.stream_bytes), sink(sizeof(unsigned));
    fill_random_half(src.get(), spec.stream_bytes / 2, HalfType::kBF16, kFillAmplitude, 1, stream);
    ETAP_BENCH_CUDA(cudaMemsetAsync(sink.get(), 0, sink.bytes(), stream));

    const double copy_us = median_us(
        [&](int, cudaStream_t s) {
          ETAP_BENCH_CUDA(
              cudaMemcpyAsync(dst.get(), src.get(), spec.stream_bytes, cudaMemcpyDeviceToDevice, s));
        },
        spec, stream);
    c.copy_gbps = copy_gbps(static_cast<double>(spec.stream_bytes), copy_us);

    int sms = 0, blocks_per_sm = 0;
    ETAP_BENCH_CUDA(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
    ETAP_BENCH_CUDA(
        cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks_per_sm, read_stream_kernel, kReadThreads, 0));
    const int blocks = sms * (blocks_per_sm > 0 ? blocks_per_sm : 1);
    const int64_t words = spec.stream_bytes / static_cast<int64_t>(sizeof(uint4));
    const double read_us = median_us(
        [&](int, cudaStream_t s) {
          read_stream_kernel<<<blocks, kReadThreads, 0, s>>>(src.get<const uint4>(), words,
                                                             sink.get<unsigned>());
          ETAP_BENCH_CUDA(cudaGetLastError());
        },
        spec, stream);
    c.read_gbps = gb_per_s(static_cast<double>(spec.stream_bytes), read_us);
  }
  {
    const int64_t n = spec.gemm_n;
    const std::size_t matrix_bytes = static_cast<std::size_t>(n * n) * sizeof(__nv_bfloat16);
    DeviceBuffer a(matrix_bytes), b(matrix_bytes), out(matrix_bytes);
    fill_random_half(a.get(), n * n, HalfType::kBF16, kFillAmplitude, 2, stream);
    fill_random_half(b.get(), n * n, HalfType::kBF16, kFillAmplitude, 3, stream);
    cublasHandle_t h = cublas.on(stream);
    const float alpha = 1.f, beta = 0.f;
    const int dim = static_cast<int>(n);
    const double gemm_us = median_us(
        [&](int, cudaStream_t) {
          ETAP_BENCH_CUBLAS(cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, dim, dim, dim, &alpha, a.get(),
                                         CUDA_R_16BF, dim, b.get(), CUDA_R_16BF, dim, &beta, out.get(),
                                         CUDA_R_16BF, dim, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
        },
        spec, stream);
    c.gemm_tflops = tflop_per_s(gemm_flops(n, n, n), gemm_us);
  }
  ETAP_BENCH_CUDA(cudaStreamSynchronize(stream));
  return c;
}

}  // namespace etap::bench
