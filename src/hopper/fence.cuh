// Proxy fences and grid-dependency control.
#pragma once

#include <cuda/ptx>

namespace etap::hopper {

// fence.proxy.async.shared::cta — generic-proxy writes to shared memory (st.shared, stmatrix) become
// visible to the async proxy (wgmma operand reads, TMA). Every writing thread fences, then a barrier.
__device__ __forceinline__ void fence_proxy_async_smem() {
  cuda::ptx::fence_proxy_async(cuda::ptx::space_shared);
}

// griddepcontrol.launch_dependents — lets a programmatic dependent launch start (PTX ISA §9.7.13.6).
__device__ __forceinline__ void launch_dependents() {
  asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
}

// griddepcontrol.wait — waits until the prerequisite grids have completed and their memory is visible.
__device__ __forceinline__ void wait_prerequisite_grids() {
  asm volatile("griddepcontrol.wait;\n" ::: "memory");
}

}  // namespace etap::hopper
