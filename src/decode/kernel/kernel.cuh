// The ETAP decode kernel: setup, then exactly one role split (producer warp / consumer warpgroups).
#pragma once

#include <cuda.h>

#include "decode/kernel/config.hpp"
#include "decode/kernel/consumer.cuh"
#include "decode/kernel/fp8_convert.cuh"
#include "decode/kernel/params.hpp"
#include "decode/kernel/producer.cuh"
#include "decode/kernel/shared_storage.cuh"
#include "decode/kernel/timeline.cuh"
#include "hopper/fence.cuh"
#include "hopper/pipeline.cuh"
#include "hopper/regs.cuh"
#include "hopper/tma.cuh"

namespace etap::decoding {

// ConsumerT: Consumer (ETAP, the product), or a benchmark baseline on the same machinery (bench/baselines).
template <class Cfg, template <class> class ConsumerT>
__global__ void __launch_bounds__(Cfg::kThreads, 1) etap_decode_kernel(
    const __grid_constant__ CUtensorMap q_map,  // q  [batch, s_q, h_q, 576], box 64 × h_q × s_q
    const __grid_constant__ CUtensorMap
        kv_map,  // kv [pages, 64, 576], box 64 × 64 (FP8: bytes, fp8_load.cuh)
    const __grid_constant__ CUtensorMap
        rope_map,  // FP8 V3.2: the RoPE bf16 of each token (else kv_map's copy)
    const __grid_constant__ KernelParams params) {
  static_assert(sizeof(SharedStorage<Cfg>) <= kMaxDynamicSmem, "shared memory over the 227 KiB limit");
  extern __shared__ __align__(1024) uint8_t smem_raw[];
  auto& smem = *reinterpret_cast<SharedStorage<Cfg>*>(smem_raw);
  // The 128B-swizzle atoms (TMA boxes, wgmma operands) must start on 1024-byte boundaries.
  if ((static_cast<uint32_t>(__cvta_generic_to_shared(smem_raw)) & 1023u) != 0) __trap();

  if (threadIdx.x == 0) {
    // full: the dense TMA's one arrival; FP8 converter: every converter thread, plus V3.2's RoPE TMA;
    // register FP8: the load's own arrivals (fp8_load.cuh staged_arrivals: 1, the gather 32).
    constexpr uint32_t kFullArrivals =
        !Cfg::kFp8 ? 1 : Cfg::kConverterThreads + (Cfg::kFormat == CacheFormat::kFp8V32 ? 1 : 0);
    for (int s = 0; s < Cfg::kStages; ++s) {
      if constexpr (Cfg::kRegisterFp8)
        hopper::mbarrier_init(&smem.full[s], Fp8Loads<Cfg>::staged_arrivals(params));
      else
        hopper::mbarrier_init(&smem.full[s], kFullArrivals);
      hopper::mbarrier_init(&smem.empty[s], Cfg::kConsumerWarps);
      for (int b = 0; b < Cfg::kBoxes; ++b) hopper::mbarrier_init(&smem.box_full[s][b], 1);
      if constexpr (Cfg::kConverterWarps) {
        hopper::mbarrier_init(&smem.staged[s], Fp8Loads<Cfg>::staged_arrivals(params));
        smem.converter_stop[s] = 0;
      }
    }
    hopper::mbarrier_init(&smem.q_full, 1);
    hopper::mbarrier_init(&smem.q_empty, Cfg::kConsumerWarps);
    timeline::reset(smem);  // the benchmark's timeline probe only (an empty function otherwise)
    if constexpr (Cfg::kSeparateStaging) hopper::mbarrier_init(&smem.staging_empty, Cfg::kConverterThreads);
    hopper::fence_barrier_init();
    hopper::prefetch_tensor_map(&q_map);  // kernel parameters: no previous kernel writes them
    hopper::prefetch_tensor_map(&kv_map);
    if constexpr (Cfg::kFormat == CacheFormat::kFp8V32) hopper::prefetch_tensor_map(&rope_map);
  }
  __syncthreads();
  hopper::launch_dependents();  // the combine kernel may start its prologue
  // Programmatic dependent launch (hopper/launch.hpp): the previous kernel in the stream (the plan kernel,
  // or an engine's writer of q, seqlens or the cache) may run until here. Above, only shared memory and the
  // parameters are touched; every global access of both roles (plan, seqlens, block table, q and kv by TMA;
  // out, lse, partials) is below, and both roles start with one.
  hopper::wait_prerequisite_grids();
  timeline::probe(smem, timeline::Event::kEntry);

  const int warpgroup = threadIdx.x / Cfg::kWarpgroupThreads;
  if (warpgroup == Cfg::kConsumerWarpgroups) {
    hopper::setmaxnreg_dec<Cfg::kProducerRegs>();
    const int thread = threadIdx.x % Cfg::kWarpgroupThreads;
    if (thread < kWarpSize)  // one producer warp
      producer<Cfg>(params, smem, &q_map, &kv_map, &rope_map);
    else if constexpr (Cfg::kConverterWarps)  // the other three dequantise (register FP8: they exit)
      Fp8Converter<Cfg>{smem, thread - kWarpSize}.run();
  } else {
    hopper::setmaxnreg_inc<Cfg::kConsumerRegs>();
    ConsumerT<Cfg>(params, smem, warpgroup).run();
  }
}

}  // namespace etap::decoding
