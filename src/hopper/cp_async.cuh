// Per-thread asynchronous copies global → shared (PTX ISA §9.7.9.25.3, cp.async, sm_80+), completion tracked
// on an mbarrier (cp.async.mbarrier.arrive). The gather path of the KV loads uses them where a page is too
// small for a TMA box; their writes are generic-proxy writes, so readers through the async proxy (wgmma) fence
// with fence_proxy_async_smem after observing the barrier.
#pragma once

#include <cstdint>

namespace etap::hopper {

// cp.async.cg.shared.global [dst], [src], 16 — 16 bytes, cached in L2 only. Both addresses 16-byte aligned.
__device__ __forceinline__ void cp_async_16(void* smem_dst, const void* gmem_src) {
  const auto dst = static_cast<uint32_t>(__cvta_generic_to_shared(smem_dst));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(dst), "l"(gmem_src) : "memory");
}

// cp.async.mbarrier.arrive.shared::cta.b64 — the barrier's pending arrivals grow by one now and shrink by one
// when every cp.async this thread issued before has landed: the phase cannot complete before they do.
__device__ __forceinline__ void cp_async_mbarrier_arrive(uint64_t* bar) {
  const auto addr = static_cast<uint32_t>(__cvta_generic_to_shared(bar));
  asm volatile("cp.async.mbarrier.arrive.shared::cta.b64 [%0];\n" ::"r"(addr) : "memory");
}

}  // namespace etap::hopper
