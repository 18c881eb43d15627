// FP8 dequantisation: warps 1..3 of the producer warpgroup turn each staged e4m3 block (fp8_staging.hpp)
// into the 16-bit ring stage the consumers read, in exactly the layout TMA gives a dense cache (128B
// swizzle, box b = columns [64b, 64b + 64), row = token). e4m3 → bf16/fp16 is exact (common/fp8.hpp):
//   kFp8PerTensor: converted unscaled; the one scale is folded into the logits and O (kv_scale.cuh).
//   kFp8V32: multiplied by the token's group scale in fp32 and rounded to bf16 (RN): exact when e4m3 · scale
//     has at most 8 significant bits (the test data's scales), else within half a bf16 ulp (2^-9 relative) of
//     the fp64 reference's value; the RoPE box arrives by TMA (fp8_load.cuh) and is not touched here.
// Pipeline: wait the stage's `staged` barrier (the cache load landed), convert the block (Fp8Staging::Walk:
// 24 pieces of 16 codes per thread, loads a group ahead, 2 syncs in place, V3.2: 3), fence the writes for the
// async proxy (wgmma), one arrival per converter thread on the stage's `full` barrier; stop at the
// producer's signal (Fp8Loads::stop_converter). The conversions themselves: fp8_dequant.cuh.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <type_traits>

#include "common/fp8.hpp"
#include "decode/kernel/barriers.hpp"
#include "decode/kernel/fp8_dequant.cuh"
#include "decode/kernel/fp8_load.cuh"
#include "decode/kernel/fp8_staging.hpp"
#include "decode/kernel/shared_storage.cuh"
#include "hopper/barrier.cuh"
#include "hopper/fence.cuh"
#include "hopper/pipeline.cuh"
#include "hopper/smem_access.cuh"
#include "hopper/smem_desc.cuh"

namespace etap::decoding {

template <class Cfg>
struct Fp8Converter {
  using T = typename Cfg::Element;
  static constexpr bool kV32 = Cfg::kFormat == CacheFormat::kFp8V32;
  using Staging = Fp8Staging<kV32, Cfg::kBoxBytes, Cfg::kBoxes>;
  // Steps per group: 3 (two groups of codes in flight: 24 registers); V3.2 also holds scales: 2.
  using Walk = typename Staging::template Walk<Cfg::kConverterThreads, kV32 ? 2 : 3>;
  static constexpr int kGroupSteps = Walk::kStepsPerGroup;  // steps whose loads are in flight together
  static constexpr uint32_t kStageBytes = Cfg::kPageBytes;
  static constexpr uint32_t kSyncGroups = Walk::sync_groups();
  static_assert(Walk::safe() && Cfg::kConverterThreads == 96);
  static_assert(Cfg::kFp8 && Cfg::kBoxBytes == Staging::kTokens * hopper::kSwizzleRowBytes);

  SharedStorage<Cfg>& smem;
  int thread;  // 0 .. kThreads − 1

  // Until the producer's stop (fp8_load.cuh): the converter follows the stages, not the plan. A block staged
  // in the separate buffer (stage 1 of a kSeparateStaging config) waits for the consumers to release its ring
  // stage here (the producer did not), and frees the buffer once read.
  __device__ void run() {
    hopper::PipelineState<Cfg::kStages> stage;
    const uint32_t ring = hopper::smem_address(smem.kv);
    for (;;) {
      hopper::mbarrier_wait(&smem.staged[stage.index], stage.phase);
      if (*static_cast<volatile uint32_t*>(&smem.converter_stop[stage.index]) != 0) return;
      const bool separate = Fp8Loads<Cfg>::separate(stage.index);
      if (separate) hopper::mbarrier_wait(&smem.empty[stage.index], stage.producer_phase());
      convert(ring + stage.index * kStageBytes,
              hopper::smem_address(Fp8Loads<Cfg>::staging(smem, stage.index)), !separate);
      if constexpr (Cfg::kSeparateStaging)
        if (separate) hopper::mbarrier_arrive(&smem.staging_empty);
      hopper::fence_proxy_async_smem();
      hopper::mbarrier_arrive(&smem.full[stage.index]);
      stage.advance();
    }
  }

  // One group's loads: the codes of its steps (V3.2: and their tokens' group scales).
  struct Group {
    uint4 codes[kGroupSteps];
    float scale[kV32 ? kGroupSteps : 1];
  };

  __device__ __forceinline__ bool valid(int k) const {
    return Walk::kEveryStepFull || Walk::row(thread, k) < Walk::kRows;
  }

  __device__ __forceinline__ void load(Group& group, int g, uint32_t staging_base) const {
    const uint32_t src =
        staging_base + Walk::source(thread, 0) + g * (kGroupSteps * Walk::kRowStep * Staging::kRowBytes);
#pragma unroll
    for (int j = 0; j < kGroupSteps; ++j) {
      const int k = g * kGroupSteps + j;
      if (!valid(k)) continue;
      group.codes[j] = hopper::ld_shared_v4(src + j * Walk::kRowStep * Staging::kRowBytes);
      if constexpr (kV32) group.scale[j] = hopper::ld_shared_f32(staging_base + Walk::scale_byte(thread, k));
    }
  }

  __device__ __forceinline__ void store(const Group& group, int g, uint32_t stage_base) const {
    const uint32_t step_bytes = Walk::kRowStep * Walk::kRingRowBytes;
    const uint32_t base = stage_base + g * (kGroupSteps * step_bytes);
    const uint32_t dst0 = base + Walk::destination(thread, 0, 0),
                   dst1 = base + Walk::destination(thread, 0, 1);
#pragma unroll
    for (int j = 0; j < kGroupSteps; ++j) {
      if (!valid(g * kGroupSteps + j)) continue;
      const uint4 c = group.codes[j];
      uint2 w0, w1, w2, w3;
      if constexpr (kV32) {
        w0 = e4m3x4_scaled_bf16(c.x, group.scale[j]);
        w1 = e4m3x4_scaled_bf16(c.y, group.scale[j]);
        w2 = e4m3x4_scaled_bf16(c.z, group.scale[j]);
        w3 = e4m3x4_scaled_bf16(c.w, group.scale[j]);
      } else {
        w0 = e4m3x4_to<T>(c.x);
        w1 = e4m3x4_to<T>(c.y);
        w2 = e4m3x4_to<T>(c.z);
        w3 = e4m3x4_to<T>(c.w);
      }
      hopper::st_shared_v4(dst0 + j * step_bytes, make_uint4(w0.x, w0.y, w1.x, w1.y));
      hopper::st_shared_v4(dst1 + j * step_bytes, make_uint4(w2.x, w2.y, w3.x, w3.y));
    }
  }

  __device__ __forceinline__ void sync_if(bool in_place, int g) const {
    if (in_place && ((kSyncGroups >> g) & 1u) != 0)
      hopper::named_barrier_sync(barrier_id(NamedBarrier::kStagingRead), Cfg::kConverterThreads);
  }

  // The block's walk (fp8_staging.hpp, Walk): groups in pairs, two sets of registers, the next group's loads
  // in flight while this one converts; in place, the converter warps sync where Walk::sync_groups() says
  // (after the next group's loads, before this group's stores); from the separate buffer nothing overlaps.
  __device__ __forceinline__ void convert(uint32_t stage_base, uint32_t staging_base, bool in_place) {
    Group even, odd;
    load(even, 0, staging_base);
#pragma unroll 1
    for (int g = 0; g < Walk::kGroups; g += 2) {
      load(odd, g + 1, staging_base);
      sync_if(in_place, g);
      store(even, g, stage_base);
      if (g + 2 < Walk::kGroups) load(even, g + 2, staging_base);
      sync_if(in_place, g + 1);
      store(odd, g + 1, stage_base);
    }
  }
};

}  // namespace etap::decoding
