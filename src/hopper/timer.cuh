// Time stamps for the benchmark's timeline probe (decode/kernel/timeline.cuh); nothing shipped reads them.
#pragma once

#include <cstdint>

namespace etap::hopper {

// mov.u64 %globaltimer — nanoseconds of a clock common to every SM (PTX ISA §10, special registers). Its
// update interval is the hardware's (the tool reports the step it observed). "memory": a compiler barrier,
// so that the stamp stays where it is written among the loads, stores and barrier waits around it.
__device__ __forceinline__ uint64_t global_timer_ns() {
  uint64_t t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t)::"memory");
  return t;
}

// mov.u32 %clock — the SM's cycle counter, low 32 bits (per SM, not comparable across SMs).
__device__ __forceinline__ uint32_t sm_clock() {
  uint32_t t;
  asm volatile("mov.u32 %0, %%clock;" : "=r"(t)::"memory");
  return t;
}

}  // namespace etap::hopper
