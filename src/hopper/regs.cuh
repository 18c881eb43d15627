// setmaxnreg (PTX ISA §9.7.17.1, sm_90a): moves registers between warpgroups. Takes effect only when the
// kernel has a register cap at entry (__launch_bounds__(threads, 1)); every warp of a warpgroup executes it.
#pragma once

#include <cstdint>

namespace etap::hopper {

// setmaxnreg.inc.sync.aligned.u32 kRegs
template <uint32_t kRegs>
__device__ __forceinline__ void setmaxnreg_inc() {
  static_assert(kRegs % 8 == 0 && kRegs >= 24 && kRegs <= 256);
  asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(kRegs));
}

// setmaxnreg.dec.sync.aligned.u32 kRegs
template <uint32_t kRegs>
__device__ __forceinline__ void setmaxnreg_dec() {
  static_assert(kRegs % 8 == 0 && kRegs >= 24 && kRegs <= 256);
  asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(kRegs));
}

}  // namespace etap::hopper
