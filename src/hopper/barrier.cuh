// Named barriers (PTX ISA §9.7.13.1, bar.sync / bar.arrive with an id and a thread count): barriers for a
// subset of the CTA, so that roles never call __syncthreads() inside their branch.
#pragma once

#include <cstdint>

namespace etap::hopper {

// bar.sync id, nthreads — waits until nthreads threads have arrived at barrier id.
__device__ __forceinline__ void named_barrier_sync(uint32_t id, uint32_t threads) {
  asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}

// bar.arrive id, nthreads — arrives without waiting.
__device__ __forceinline__ void named_barrier_arrive(uint32_t id, uint32_t threads) {
  asm volatile("bar.arrive %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}

// bar.red.and.pred id, nthreads — waits like bar.sync and returns whether `pred` holds in every thread.
__device__ __forceinline__ bool named_barrier_and(uint32_t id, uint32_t threads, bool pred) {
  uint32_t all;
  asm volatile(
      "{\n.reg .pred p, q;\nsetp.ne.u32 p, %1, 0;\nbar.red.and.pred q, %2, %3, p;\nselp.u32 %0, 1, 0, q;\n}\n"
      : "=r"(all)
      : "r"(static_cast<uint32_t>(pred)), "r"(id), "r"(threads)
      : "memory");
  return all != 0;
}

}  // namespace etap::hopper
