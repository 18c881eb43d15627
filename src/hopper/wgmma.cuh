// Warpgroup matrix multiply-accumulate (PTX ISA §9.7.15): D[64 × N] (+)= A[64 × 16] · B[16 × N], both
// operands in shared memory, fp32 accumulators in registers (N/2 per thread of the warpgroup).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "common/constants.hpp"
#include "hopper/wgmma_ops.cuh"

namespace etap::hopper {

// A warpgroup: the 4 consecutive warps that issue one wgmma together.
inline constexpr int kWarpgroupWarps = 4;
inline constexpr int kWarpgroupThreads = kWarpgroupWarps * kWarpSize;

// Operand majorness, the immediate imm-trans-{a,b} of wgmma: K-major (K contiguous) or MN-major.
enum class Major : int { kK = 0, kMN = 1 };

// wgmma.fence.sync.aligned — orders prior register writes to accumulators before the next wgmma.
__device__ __forceinline__ void wgmma_fence() {
  asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
}

// wgmma.commit_group.sync.aligned — closes the group of wgmmas issued so far.
__device__ __forceinline__ void wgmma_commit() {
  asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
}

// wgmma.wait_group.sync.aligned N — waits until at most N groups are pending.
template <int kPending>
__device__ __forceinline__ void wgmma_wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(kPending) : "memory");
}

// Keeps the compiler from moving accumulator reads/writes across wgmma issue and wait.
template <int kRegs>
__device__ __forceinline__ void fence_accumulator(float (&d)[kRegs]) {
#pragma unroll
  for (int i = 0; i < kRegs; ++i) asm volatile("" : "+f"(d[i])::"memory");
}

// D[64 × kN] (+)= A · B for element type T (__nv_bfloat16 or __half). scale_d = 0 overwrites D.
template <int kN, typename T, Major kMajorA, Major kMajorB>
__device__ __forceinline__ void wgmma(float (&d)[kN / 2], uint64_t desc_a, uint64_t desc_b, int scale_d) {
  constexpr bool bf16 = std::is_same_v<T, __nv_bfloat16>;
  static_assert(bf16 || std::is_same_v<T, __half>, "wgmma: T must be bf16 or fp16");
  // An N without a generated specialisation fails here as an incomplete type (tools/gen_wgmma.py).
  detail::Wgmma<kN, bf16>::template mma<static_cast<int>(kMajorA), static_cast<int>(kMajorB)>(
      d, desc_a, desc_b, scale_d);
}

// D[64 × kN] (+)= A · B with A [64 × 16] from registers (a: the caller's fragment, 2 elements of T per
// register in the accumulator fragment's layout, pack_fragment) and B from shared memory.
template <int kN, typename T, Major kMajorB>
__device__ __forceinline__ void wgmma_rs(float (&d)[kN / 2], const uint32_t (&a)[4], uint64_t desc_b,
                                         int scale_d) {
  constexpr bool bf16 = std::is_same_v<T, __nv_bfloat16>;
  static_assert(bf16 || std::is_same_v<T, __half>, "wgmma_rs: T must be bf16 or fp16");
  detail::WgmmaRs<kN, bf16>::template mma<static_cast<int>(kMajorB)>(d, a, desc_b, scale_d);
}

// Two fp32 values as one register of two 16-bit T (lo at the lower address / column).
template <typename T>
__device__ __forceinline__ uint32_t pack_pair(float lo, float hi) {
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<const uint32_t*>(&v);
  } else {
    const __half2 v = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<const uint32_t*>(&v);
  }
}

// The k16 slice `ks` of a 64 × N fp32 accumulator fragment as the A fragment of a register-sourced wgmma
// (PTX ISA §9.7.15.5.1, "Register Fragments … A matrix"): registers 8ks … 8ks + 7 hold rows r, r + 8 and
// columns 16ks + 2(lane%4) + {0, 1} and + 8 in the order a0 … a3 expects, two elements per register.
template <typename T, int kRegs>
__device__ __forceinline__ void pack_fragment(const float (&d)[kRegs], int ks, uint32_t (&a)[4]) {
#pragma unroll
  for (int j = 0; j < 4; ++j) a[j] = pack_pair<T>(d[8 * ks + 2 * j], d[8 * ks + 2 * j + 1]);
}

// Position of accumulator register i of the calling thread in the 64 × N tile (PTX ISA §9.7.15.5.1,
// "Matrix fragments for wgmma.mma_async … .f32 accumulator"): warp w owns rows 16w … 16w+15.
struct AccumulatorCoord {
  int row, col;
};
__device__ __forceinline__ AccumulatorCoord accumulator_coord(int thread_in_warpgroup, int i) {
  const int warp = thread_in_warpgroup / kWarpSize, lane = thread_in_warpgroup % kWarpSize;
  return {16 * warp + lane / 4 + 8 * ((i / 2) % 2), 8 * (i / 4) + 2 * (lane % 4) + (i % 2)};
}

}  // namespace etap::hopper
