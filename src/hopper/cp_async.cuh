// Per-thread asynchronous copies global → shared (PTX ISA §9.7.9.25.3, cp.async, sm_80+). The gather path of
// the KV loads uses them where a page is too small for a TMA box. Their writes are generic-proxy writes:
// before wgmma (the async proxy) may read them, the writing thread waits for them (cp_async_wait_all) and
// fences (fence_proxy_async_smem), then releases them through an mbarrier arrival.
#pragma once

#include <cstdint>

namespace etap::hopper {

// cp.async.cg.shared.global [dst], [src], 16 — 16 bytes, cached in L2 only. Both addresses 16-byte aligned.
__device__ __forceinline__ void cp_async_16(void* smem_dst, const void* gmem_src) {
  const auto dst = static_cast<uint32_t>(__cvta_generic_to_shared(smem_dst));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(dst), "l"(gmem_src) : "memory");
}

// The same by 32-bit shared-window address (one register instead of a generic pointer).
__device__ __forceinline__ void cp_async_16(uint32_t smem_dst, const void* gmem_src) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(smem_dst), "l"(gmem_src) : "memory");
}

// cp.async.wait_all — every cp.async this thread issued has landed in shared memory.
__device__ __forceinline__ void cp_async_wait_all() {
  asm volatile("cp.async.wait_all;\n" ::: "memory");
}

}  // namespace etap::hopper
