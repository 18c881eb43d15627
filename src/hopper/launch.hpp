// Host side of a kernel launch: programmatic dependent launch (PDL) and the opt-in to more than 48 KiB of
// dynamic shared memory, set once per (kernel, device) instead of once per launch. For .cu files (the
// cudaLaunchKernelEx template of cuda_runtime.h).
#pragma once

#include <cuda_runtime.h>

#include <utility>

#include "common/per_device.hpp"

namespace etap::hopper {

struct LaunchShape {
  dim3 grid, block;
  int smem_bytes = 0;  // dynamic shared memory
};

// Launches `kernel` as a programmatic dependent of the previous kernel in `stream`
// (cudaLaunchAttributeProgrammaticStreamSerialization): its CTAs may become resident and run their prologue
// while that kernel is still running, from when all of that kernel's CTAs have executed
// griddepcontrol.launch_dependents or exited. `kernel` must therefore execute griddepcontrol.wait
// (wait_prerequisite_grids, fence.cuh) in every thread before its first global-memory access that a
// previous kernel may write or read. Without a previous kernel (first in the stream or the graph, or after
// a copy) it is an ordinary launch. Returns the launch's error, like `kernel<<<...>>>` followed by
// cudaGetLastError(), which it also clears.
template <typename... Params, typename... Args>
cudaError_t launch_programmatic(void (*kernel)(Params...), const LaunchShape& shape, cudaStream_t stream,
                                Args&&... args) {
  cudaLaunchAttribute attribute{};
  attribute.id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attribute.val.programmaticStreamSerializationAllowed = 1;
  cudaLaunchConfig_t config{};
  config.gridDim = shape.grid;
  config.blockDim = shape.block;
  config.dynamicSmemBytes = static_cast<size_t>(shape.smem_bytes);
  config.stream = stream;
  config.attrs = &attribute;
  config.numAttrs = 1;
  const cudaError_t launched = cudaLaunchKernelEx(&config, kernel, std::forward<Args>(args)...);
  const cudaError_t last = cudaGetLastError();
  return launched != cudaSuccess ? launched : last;
}

// Runs `launch()` (a launch of `kernel` with `smem_bytes` of dynamic shared memory) after setting
// cudaFuncAttributeMaxDynamicSharedMemorySize on the current device, unless `opted_in` records that this was
// done already. The attribute is state of the device's context, which cudaDeviceReset destroys: a launch
// that fails after a recorded opt-in sets it again and retries once.
template <typename Kernel, typename Launch>
cudaError_t launch_with_smem_opt_in(Kernel kernel, int smem_bytes, common::PerDevice<bool>& opted_in,
                                    Launch&& launch) {
  int device = 0;
  if (const cudaError_t e = cudaGetDevice(&device); e != cudaSuccess) return e;
  const auto opt_in = [&] {
    const cudaError_t e =
        cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem_bytes);
    opted_in.set(device, e == cudaSuccess);
    return e;
  };
  const bool recorded = opted_in.get(device);
  if (const cudaError_t e = recorded ? cudaSuccess : opt_in(); e != cudaSuccess) return e;
  const cudaError_t launched = launch();
  if (launched == cudaSuccess || !recorded) return launched;
  const cudaError_t again = opt_in();
  return again != cudaSuccess ? again : launch();
}

}  // namespace etap::hopper
