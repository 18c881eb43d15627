// The timeline probe of the decode kernel, for the benchmark tool bench/timeline only: with ETAP_TIMELINE
// defined (only that tool's own kernel instantiations), probe() has the first thread of its warpgroup write
// %globaltimer, %clock and the event into the store (timeline_events.hpp); without it (the library) every
// function here is empty, so the shipped kernels compile to the same code as without the calls.
#pragma once

#include <cstdint>

#include "decode/kernel/timeline_events.hpp"

#ifdef ETAP_TIMELINE
#include <cuda_runtime_api.h>

#include "hopper/timer.cuh"
#endif

namespace etap::decoding::timeline {

#ifdef ETAP_TIMELINE

// One per translation unit (whole-program compilation): attach() sets the copy of the TU that launches.
static __constant__ Store store;

static inline cudaError_t attach(const Store& s, cudaStream_t stream) {
  return cudaMemcpyToSymbolAsync(store, &s, sizeof s, 0, cudaMemcpyHostToDevice, stream);
}

// Thread 0, before the kernel's __syncthreads: each role's record counter (SharedStorage::timeline_records).
template <class Smem>
__device__ __forceinline__ void reset(Smem& smem) {
  for (int r = 0; r < kRoles; ++r) smem.timeline_records[r] = 0;
}

// Called by every thread of a role (or of the CTA); the role's first thread records.
template <class Smem>
__device__ __forceinline__ void probe(Smem& smem, Event e, uint32_t arg = 0) {
  if (threadIdx.x % kRoleThreads != 0) return;
  const uint64_t now = hopper::global_timer_ns();
  const uint32_t clock = hopper::sm_clock();
  const uint32_t role = threadIdx.x / kRoleThreads;
  const uint32_t n = smem.timeline_records[role];
  smem.timeline_records[role] = n + 1;
  if (store.stamps == nullptr) return;
  const int64_t stream = stream_index(static_cast<int64_t>(blockIdx.y) * gridDim.x + blockIdx.x, role);
  if (n < store.capacity) {
    const uint4 record =
        make_uint4(static_cast<uint32_t>(now), static_cast<uint32_t>(now >> 32), clock, pack_info(e, arg));
    *reinterpret_cast<uint4*>(store.stamps + stream * store.capacity + n) = record;
  }
  if (e == Event::kExit) store.counts[stream] = n + 1;
}

#else

template <class Smem>
__device__ __forceinline__ void reset(Smem&) {}

template <class Smem>
__device__ __forceinline__ void probe(Smem&, Event, uint32_t = 0) {}

#endif

}  // namespace etap::decoding::timeline
