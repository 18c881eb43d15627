// Global loads that stay where they are written. The compiler may sink an ordinary load into the branch that
// uses its value, past the barrier waits and TMA issues in between, so that a load meant to overlap another
// round trip waits for it instead. An asm volatile load keeps its place among the thread's other volatile
// asm (mbarrier waits, TMA issues); later code waits for its value only where it uses it.
#pragma once

#include <cstdint>

namespace etap::hopper {

// ld.global.b32 in program order with the thread's volatile asm.
__device__ __forceinline__ int32_t load_in_place(const int32_t* address) {
  int32_t value;
  asm volatile("ld.global.b32 %0, [%1];\n" : "=r"(value) : "l"(address));
  return value;
}

}  // namespace etap::hopper
