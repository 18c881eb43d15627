// Which ring barrier says that a box of a KV block has landed. Dense whole-block TMA loads signal every box
// on its own barrier (box_full), so that the transposed consumer starts its first Sᵀ wgmmas on box 0 while
// the rest of the block is still in flight. Measured on an H200 (docs/PERF.md, 2026-12-02c runs 4–5): ~1.5 µs
// less at b=1 8K and ~1.3% less at b=16 64K, where few blocks are in flight; no change when every SM
// streams (the boxes of a block then land together). Register FP8 (e4m3 boxes) does the same. The other
// loaders (TMA chunks, the cp.async gather, the FP8 converter's conversion) signal the whole block on `full`.
#pragma once

#include "decode/kernel/params.hpp"
#include "decode/kernel/shared_storage.cuh"
#include "hopper/pipeline.cuh"

namespace etap::decoding {

template <class Cfg>
struct BlockArrival {
  SharedStorage<Cfg>& smem;
  const bool per_box;  // warp-uniform: one launch parameter

  __device__ BlockArrival(const KernelParams& p, SharedStorage<Cfg>& storage)
      : smem(storage), per_box(uses_box_barriers(p)) {}

  // Mirrors the producer: only its dense whole-block loader (kv_load.cuh whole_blocks) arrives per box.
  __device__ static bool uses_box_barriers(const KernelParams& p) {
    return (!Cfg::kFp8 || Cfg::kRegisterFp8) && p.kv_load == KvLoad::kWholeBlocks;
  }

  // Boxes are waited for in increasing order from `first`: box `first` waits for the whole block when the
  // loader signals only that; the later boxes then wait for nothing.
  __device__ __forceinline__ void wait_box(int stage, uint32_t phase, int box, int first = 0) const {
    if (per_box)
      hopper::mbarrier_wait(&smem.box_full[stage][box], phase);
    else if (box == first)
      hopper::mbarrier_wait(&smem.full[stage], phase);
  }

  __device__ __forceinline__ void wait_boxes(int stage, uint32_t phase, int first, int count) const {
    for (int b = first; b < first + count; ++b) wait_box(stage, phase, b, first);
  }
};

}  // namespace etap::decoding
