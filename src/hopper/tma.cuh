// TMA tiled loads (PTX ISA §9.7.9.25, cp.async.bulk.tensor …tile.mbarrier::complete_tx::bytes): a box of a
// tensor described by a CUtensorMap is copied to shared memory; completion is counted on an mbarrier.
// Coordinates outside the tensor are zero-filled, so a bad page id can never fault.
#pragma once

#include <cuda.h>

#include <cstdint>
#include <cuda/ptx>

namespace etap::hopper {

// cp.async.bulk.tensor.3d.shared::cluster.global.tile.mbarrier::complete_tx::bytes
__device__ __forceinline__ void tma_load_3d(void* smem_dst, const CUtensorMap* map, int32_t c0, int32_t c1,
                                            int32_t c2, uint64_t* bar) {
  const int32_t coords[3] = {c0, c1, c2};
  cuda::ptx::cp_async_bulk_tensor(cuda::ptx::space_cluster, cuda::ptx::space_global, smem_dst, map, coords,
                                  bar);
}

// cp.async.bulk.tensor.4d.shared::cluster.global.tile.mbarrier::complete_tx::bytes
__device__ __forceinline__ void tma_load_4d(void* smem_dst, const CUtensorMap* map, int32_t c0, int32_t c1,
                                            int32_t c2, int32_t c3, uint64_t* bar) {
  const int32_t coords[4] = {c0, c1, c2, c3};
  cuda::ptx::cp_async_bulk_tensor(cuda::ptx::space_cluster, cuda::ptx::space_global, smem_dst, map, coords,
                                  bar);
}

// prefetch.tensormap — pulls the descriptor into the cache before its first use.
__device__ __forceinline__ void prefetch_tensor_map(const CUtensorMap* map) {
  asm volatile("prefetch.tensormap [%0];\n" ::"l"(reinterpret_cast<uint64_t>(map)) : "memory");
}

}  // namespace etap::hopper
