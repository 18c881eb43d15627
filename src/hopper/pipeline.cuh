// mbarrier-based pipeline (PTX ISA §9.7.13.15): transaction-counted "full" barriers filled by TMA and
// arrival-counted "empty" barriers released by consumers, plus the stage/phase arithmetic.
#pragma once

#include <cstdint>
#include <cuda/ptx>

namespace etap::hopper {

// mbarrier.init.shared::cta.b64
__device__ __forceinline__ void mbarrier_init(uint64_t* bar, uint32_t arrivals) {
  cuda::ptx::mbarrier_init(bar, arrivals);
}

// fence.mbarrier_init.release.cluster — makes initialised barriers visible to the async proxy (TMA).
__device__ __forceinline__ void fence_barrier_init() {
  cuda::ptx::fence_mbarrier_init(cuda::ptx::sem_release, cuda::ptx::scope_cluster);
}

// mbarrier.try_wait.parity in a loop: returns once the phase with parity `phase` has completed.
__device__ __forceinline__ void mbarrier_wait(uint64_t* bar, uint32_t phase) {
  while (!cuda::ptx::mbarrier_try_wait_parity(bar, phase)) {
  }
}

// mbarrier.arrive.release.cta.shared::cta.b64
__device__ __forceinline__ void mbarrier_arrive(uint64_t* bar) {
  (void)cuda::ptx::mbarrier_arrive(bar);
}

// mbarrier.arrive.shared::cta.b64 with a count — `count` arrivals at once (release, CTA scope).
__device__ __forceinline__ void mbarrier_arrive(uint64_t* bar, uint32_t count) {
  (void)cuda::ptx::mbarrier_arrive(bar, count);
}

// mbarrier.arrive.expect_tx.release.cta.shared::cta.b64 — one arrival plus `bytes` of pending transactions.
__device__ __forceinline__ void mbarrier_arrive_expect_tx(uint64_t* bar, uint32_t bytes) {
  (void)cuda::ptx::mbarrier_arrive_expect_tx(cuda::ptx::sem_release, cuda::ptx::scope_cta,
                                             cuda::ptx::space_shared, bar, bytes);
}

// Position in a ring of kStages buffers: which buffer, and the parity of its current use.
template <int kStages>
struct PipelineState {
  int index = 0;
  uint32_t phase = 0;

  __device__ __forceinline__ void advance() {
    if (++index == kStages) {
      index = 0;
      phase ^= 1;
    }
  }
  // Producers wait for "empty" with the opposite parity: a fresh barrier counts as already released.
  __device__ __forceinline__ uint32_t producer_phase() const { return phase ^ 1; }
};

}  // namespace etap::hopper
