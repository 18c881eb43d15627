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

}  // namespace etap::hopper
