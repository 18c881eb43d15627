// score_split: shared-memory-resident cost of one KV block's Sᵀ = K·Qᵀ on one SM, the two ways the decode
// kernel's consumer warpgroups can share it (src/decode/kernel/consumer.cuh):
//   split N: each warpgroup 36 k-steps of m64n(N/2)k16 over all of d_qk = 576 for its own N/2 columns
//            (both read the whole 72 KiB K tile);
//   split d: each warpgroup 18 k-steps of m64nNk16 (k-steps 2 wg, 2 wg + 1 of every box) for all N columns,
//            then the partial halves exchanged through shared memory with one 256-thread barrier.
// Question from docs/PERF.md (2026-12-03f): does halving the K bytes the tensor cores read per block shorten
// the per-block chain (predicted −0.3 µs at R = 16 from 128 B/clk of shared memory), and why did the decode
// A/B come out level? Also timed: one warpgroup alone (contention), split d without the exchange, and the
// Oᵀ += Vᵀ·Pᵀ phase (16 k-steps of m64nNk16, A = V read MN-major) for scale. One CTA, operands zero,
// %clock64 around `kIters` repetitions after a warm-up, per warpgroup. Build and run (device):
//   nvcc -O3 -std=c++20 -gencode=arch=compute_90a,code=sm_90a -I src -o /tmp/score_split \
//     bench/experiments/score_split/score_split.cu && /tmp/score_split
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <cstdio>

#include "hopper/barrier.cuh"
#include "hopper/smem_desc.cuh"
#include "hopper/wgmma.cuh"
#include "testing/cuda.hpp"  // ETAP_CUDA_CHECK (header-only)

namespace {

using T = __nv_bfloat16;
namespace hw = etap::hopper;
constexpr int kBoxes = 9, kBoxCols = 64, kTokens = 64, kIters = 64;
constexpr int kBoxElems = kTokens * kBoxCols;

enum Mode : int { kSplitN = 0, kSplitD = 1, kSplitNOneWg = 2, kSplitDNoExchange = 3, kPv = 4 };

template <int kN>
struct Smem {
  alignas(1024) T kv[kBoxes][kBoxElems];
  alignas(1024) T q[kBoxes][kN * kBoxCols];
  alignas(1024) T p[kN * kTokens];
  float4 exchange[2][kN / 16][128];
};

template <int kN, int kMode>
__global__ void __launch_bounds__(256, 1) score_kernel(long long* cycles, float* sink) {
  extern __shared__ uint8_t raw[];
  auto& smem = *reinterpret_cast<Smem<kN>*>((reinterpret_cast<uintptr_t>(raw) + 1023) & ~uintptr_t{1023});
  for (int i = threadIdx.x; i < static_cast<int>(sizeof(Smem<kN>) / 4); i += blockDim.x)
    reinterpret_cast<uint32_t*>(&smem)[i] = 0;
  asm volatile("fence.proxy.async.shared::cta;" ::: "memory");
  __syncthreads();
  const int wg = threadIdx.x / 128, thread = threadIdx.x % 128;
  constexpr bool kSplitDims = kMode == kSplitD || kMode == kSplitDNoExchange;
  constexpr int kCols = kMode == kPv ? kN : kSplitDims ? kN : kN / 2;
  constexpr int kSteps = kSplitDims ? 2 : 4;  // k-steps per box and warpgroup
  float acc[kCols / 2];
  float total = 0.f;
  long long start = 0;
  for (int it = -4; it < kIters; ++it) {
    if (it == 0) start = clock64();
    if (kMode == kSplitNOneWg && wg == 1) continue;
    hw::wgmma_fence();
    if constexpr (kMode == kPv) {
#pragma unroll
      for (int t = 0; t < 4; ++t) {
        const uint64_t a = hw::make_sw128_desc(smem.kv[wg * 4 + t]);
        const uint64_t b = hw::make_sw128_desc(smem.p);
#pragma unroll
        for (int ks = 0; ks < 4; ++ks)  // one accumulator tile reused (the kernel has one per t)
          hw::wgmma<kN, T, hw::Major::kMN, hw::Major::kK>(acc, hw::desc_advance(a, ks * 16 * 128),
                                                          hw::desc_advance(b, ks * 32), t > 0 || ks > 0);
      }
    } else {
      const int first = kSplitDims ? 2 * wg : 0;
      const T* q_rows = kSplitDims ? smem.q[0] : smem.q[0] + wg * (kN / 2) * kBoxCols;
#pragma unroll
      for (int box = 0; box < kBoxes; ++box) {
        const uint64_t a = hw::make_sw128_desc(smem.kv[box]);
        const uint64_t b = hw::make_sw128_desc(q_rows + box * kN * kBoxCols);
#pragma unroll
        for (int j = 0; j < kSteps; ++j)
          hw::wgmma<kCols, T, hw::Major::kK, hw::Major::kK>(acc, hw::desc_advance(a, (first + j) * 32),
                                                            hw::desc_advance(b, (first + j) * 32),
                                                            box > 0 || j > 0);
      }
    }
    hw::wgmma_commit();
    hw::wgmma_wait<0>();
    hw::fence_accumulator(acc);
    if constexpr (kMode == kSplitD) {
      constexpr int kHalf = kN / 4;
      const bool first = wg == 0;  // selects, not a register index that depends on wg (local memory)
#pragma unroll
      for (int v = 0; v < kHalf / 4; ++v) {
        float x[4];
#pragma unroll
        for (int c = 0; c < 4; ++c) x[c] = first ? acc[kHalf + 4 * v + c] : acc[4 * v + c];
        smem.exchange[1 - wg][v][thread] = make_float4(x[0], x[1], x[2], x[3]);
      }
      hw::named_barrier_sync(1, 256);
#pragma unroll
      for (int v = 0; v < kHalf / 4; ++v) {
        const float4 y = smem.exchange[wg][v][thread];
        total += (first ? acc[4 * v] : acc[kHalf + 4 * v]) + y.x + y.y + y.z + y.w;
      }
      hw::named_barrier_sync(2, 256);  // the decode kernel's kPFree plays this part
    } else {
#pragma unroll
      for (int i = 0; i < kCols / 2; ++i) total += acc[i];
    }
  }
  const long long stop = clock64();
  if (thread == 0) cycles[wg] = stop - start;
  if (total == 12345.f) sink[threadIdx.x] = total;
}

template <int kN, int kMode>
void run(const char* name) {
  const int bytes = static_cast<int>(sizeof(Smem<kN>)) + 1024;
  ETAP_CUDA_CHECK(
      cudaFuncSetAttribute(score_kernel<kN, kMode>, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes));
  long long* d_cycles;
  float* d_sink;
  ETAP_CUDA_CHECK(cudaMalloc(&d_cycles, 2 * sizeof(long long)));
  ETAP_CUDA_CHECK(cudaMalloc(&d_sink, 256 * sizeof(float)));
  long long best[2] = {1LL << 60, 1LL << 60};
  for (int rep = 0; rep < 5; ++rep) {
    ETAP_CUDA_CHECK(cudaMemset(d_cycles, 0, 2 * sizeof(long long)));
    score_kernel<kN, kMode><<<1, 256, bytes>>>(d_cycles, d_sink);
    ETAP_CUDA_CHECK(cudaGetLastError());
    long long c[2];
    ETAP_CUDA_CHECK(cudaMemcpy(c, d_cycles, sizeof(c), cudaMemcpyDeviceToHost));
    for (int w = 0; w < 2; ++w)
      if (c[w] > 0 && c[w] < best[w]) best[w] = c[w];
  }
  std::printf("N=%2d %-26s wg0 %7.0f  wg1 %7.0f cycles per block\n", kN, name,
              static_cast<double>(best[0]) / kIters,
              best[1] < (1LL << 60) ? static_cast<double>(best[1]) / kIters : 0.0);
  ETAP_CUDA_CHECK(cudaFree(d_cycles));
  ETAP_CUDA_CHECK(cudaFree(d_sink));
}

template <int kN>
void run_all() {
  run<kN, kSplitN>("S split N (main)");
  run<kN, kSplitD>("S split d + exchange");
  run<kN, kSplitDNoExchange>("S split d, no exchange");
  run<kN, kSplitNOneWg>("S split N, one warpgroup");
  run<kN, kPv>("O += V.P (16 k-steps)");
}

}  // namespace

int main() {
  int clock_khz = 0;
  ETAP_CUDA_CHECK(cudaDeviceGetAttribute(&clock_khz, cudaDevAttrClockRate, 0));
  std::printf(
      "one CTA of 256 threads (2 consumer warpgroups), operands in shared memory, %d iterations, best "
      "of 5; SM clock %d MHz\n",
      kIters, clock_khz / 1000);
  run_all<16>();
  run_all<32>();
  run_all<48>();
  return 0;
}
