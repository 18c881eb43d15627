// FP8 dequantisation: warps 1..3 of the producer warpgroup turn each staged e4m3 block (fp8_staging.hpp)
// into the 16-bit ring stage the consumers read, in exactly the layout TMA gives a dense cache (128B
// swizzle, box b = columns [64b, 64b + 64), row = token). e4m3 → bf16/fp16 is exact (common/fp8.hpp):
//   kFp8PerTensor: converted unscaled; the one scale is folded into the logits and O (kv_scale.cuh).
//   kFp8V32: multiplied by the token's group scale in fp32 and rounded to bf16 (RN): exact when e4m3 · scale
//     has at most 8 significant bits (the test data's scales), else within half a bf16 ulp (2^-9 relative) of
//     the fp64 reference's value; the RoPE box arrives by TMA (fp8_load.cuh) and is not touched here.
// Pipeline: wait the stage's `staged` barrier (the cache load landed), convert chunk by chunk, fence the
// writes for the async proxy (wgmma), one arrival per converter thread on the stage's `full` barrier; stop
// at the producer's signal (Fp8Loads::stop_converter).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <type_traits>

#include "common/fp8.hpp"
#include "decode/kernel/barriers.hpp"
#include "decode/kernel/fp8_load.cuh"
#include "decode/kernel/fp8_staging.hpp"
#include "decode/kernel/shared_storage.cuh"
#include "hopper/barrier.cuh"
#include "hopper/fence.cuh"
#include "hopper/pipeline.cuh"
#include "hopper/smem_access.cuh"
#include "hopper/smem_desc.cuh"

namespace etap::decoding {

// Four e4m3 codes (one 32-bit word) → four T values as two packed pairs, exactly.
template <typename T>
__device__ __forceinline__ uint2 e4m3x4_to(uint32_t codes) {
  constexpr bool kBf16 = std::is_same_v<T, __nv_bfloat16>;
  constexpr int kMantissa = kBf16 ? fp8::kBf16MantissaBits : fp8::kFp16MantissaBits;
  // 2^120 (bf16) or 2^8 (fp16), both halves: exponent field only.
  constexpr uint32_t kRebias = kBf16 ? ((fp8::kBf16RebiasExponent + fp8::kBf16Bias) << 7) * 0x10001u
                                     : ((fp8::kFp16RebiasExponent + fp8::kFp16Bias) << 10) * 0x10001u;
  // Spread the codes to the low bytes of two 16-bit lanes each: [c0, 0, c1, 0] and [c2, 0, c3, 0].
  const uint32_t lo = fp8::e4m3x2_placed_bits<kMantissa>(__byte_perm(codes, 0, 0x4140));
  const uint32_t hi = fp8::e4m3x2_placed_bits<kMantissa>(__byte_perm(codes, 0, 0x4342));
  uint2 out;
  if constexpr (kBf16) {
    const __nv_bfloat162 r = *reinterpret_cast<const __nv_bfloat162*>(&kRebias);
    const __nv_bfloat162 a = __hmul2(*reinterpret_cast<const __nv_bfloat162*>(&lo), r);
    const __nv_bfloat162 b = __hmul2(*reinterpret_cast<const __nv_bfloat162*>(&hi), r);
    out.x = *reinterpret_cast<const uint32_t*>(&a);
    out.y = *reinterpret_cast<const uint32_t*>(&b);
  } else {
    const __half2 r = *reinterpret_cast<const __half2*>(&kRebias);
    const __half2 a = __hmul2(*reinterpret_cast<const __half2*>(&lo), r);
    const __half2 b = __hmul2(*reinterpret_cast<const __half2*>(&hi), r);
    out.x = *reinterpret_cast<const uint32_t*>(&a);
    out.y = *reinterpret_cast<const uint32_t*>(&b);
  }
  return out;
}

// Four e4m3 codes times `scale` → four bf16: the exact e4m3 values (above), widened to fp32 (exact), times
// the scale in fp32 (one rounding), rounded to bf16 (RN): for any scale, no overflow of a folded 2^120.
__device__ __forceinline__ uint2 e4m3x4_scaled_bf16(uint32_t codes, float scale) {
  const uint2 exact = e4m3x4_to<__nv_bfloat16>(codes);
  // A bf16 pattern is the top half of the fp32 one.
  const float f0 = __uint_as_float(exact.x << 16) * scale,
              f1 = __uint_as_float(exact.x & 0xFFFF0000u) * scale;
  const float f2 = __uint_as_float(exact.y << 16) * scale,
              f3 = __uint_as_float(exact.y & 0xFFFF0000u) * scale;
  const __nv_bfloat162 a = __floats2bfloat162_rn(f0, f1), b = __floats2bfloat162_rn(f2, f3);
  return make_uint2(*reinterpret_cast<const uint32_t*>(&a), *reinterpret_cast<const uint32_t*>(&b));
}

template <class Cfg>
struct Fp8Converter {
  using T = typename Cfg::Element;
  static constexpr bool kV32 = Cfg::kFormat == CacheFormat::kFp8V32;
  using Staging = Fp8Staging<kV32, Cfg::kBoxBytes, Cfg::kBoxes>;
  static constexpr int kPieceBytes = 16;                                     // one ld/st.shared.v4
  static constexpr int kRowPieces = Staging::kRowBytes / kPieceBytes;        // 4 per staging row
  static constexpr int kBoxPieces = Staging::kTokens * kRowPieces;           // 256 per staging box
  static constexpr int kThreads = Cfg::kConverterThreads;                    // 96
  static constexpr int kPerThread = (kBoxPieces + kThreads - 1) / kThreads;  // 3
  static constexpr int kRowStep = kThreads / kRowPieces;  // 24 rows between a thread's pieces
  static constexpr uint32_t kStageBytes = Cfg::kPageBytes;
  static_assert(kThreads % kRowPieces == 0 && kRowStep % 8 == 0, "one swizzle phase per thread");
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

  // Chunk c: every thread loads its pieces of staging box c (and its rows' scales), the converter warps sync
  // if the chunk's writes reach the staging, then each thread writes its pieces as ring box c. Thread t owns
  // piece t % 4 of rows t / 4 + 24·m (m < kPerThread): 24 rows apart, so all its rows share one swizzle
  // phase (row % 8) and every address is a per-thread base plus constants. Not unrolled over chunks, to stay
  // within the producer warpgroup's registers.
  // In place (the staging inside the stage), chunks sync where kSyncChunks says; from the separate buffer
  // nothing overlaps.
  __device__ __forceinline__ void convert(uint32_t stage_base, uint32_t staging_base, bool in_place) {
    const int row0 = thread / kRowPieces, piece = thread % kRowPieces;
    const uint32_t src = staging_base + row0 * Staging::kRowBytes + piece * kPieceBytes;
    const uint32_t scale_src =
        staging_base + Staging::kScaleBox * Staging::kBoxBytes + row0 * Staging::kRowBytes;
    // Output chunks 2·piece and 2·piece + 1 of the 128-byte row, swizzled: (2·piece) ^ r and that ^ 1.
    const uint32_t chunk0 = (2 * piece) ^ (row0 % 8);
    const uint32_t dst0 = stage_base + row0 * hopper::kSwizzleRowBytes + chunk0 * kPieceBytes;
    const uint32_t dst1 = stage_base + row0 * hopper::kSwizzleRowBytes + (chunk0 ^ 1) * kPieceBytes;
#pragma unroll 1
    for (int c = 0; c < Staging::kChunks; ++c) {
      uint4 codes[kPerThread];
      float scale[kPerThread];
#pragma unroll
      for (int m = 0; m < kPerThread; ++m) {
        if (row0 + m * kRowStep < Staging::kTokens) {
          codes[m] = hopper::ld_shared_v4(src + c * Staging::kBoxBytes + m * kRowStep * Staging::kRowBytes);
          if constexpr (kV32)
            scale[m] = hopper::ld_shared_f32(scale_src + m * kRowStep * Staging::kRowBytes +
                                             (c / 2) * sizeof(float));
        }
      }
      if (in_place && ((kSyncChunks >> c) & 1u))
        hopper::named_barrier_sync(barrier_id(NamedBarrier::kStagingRead), kThreads);
#pragma unroll
      for (int m = 0; m < kPerThread; ++m) {
        if (row0 + m * kRowStep >= Staging::kTokens) continue;
        const uint32_t row_offset = c * Cfg::kBoxBytes + m * kRowStep * hopper::kSwizzleRowBytes;
        const uint32_t words[4] = {codes[m].x, codes[m].y, codes[m].z, codes[m].w};
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          uint2 a, b;
          if constexpr (kV32) {
            a = e4m3x4_scaled_bf16(words[2 * h], scale[m]);
            b = e4m3x4_scaled_bf16(words[2 * h + 1], scale[m]);
          } else {
            a = e4m3x4_to<T>(words[2 * h]);
            b = e4m3x4_to<T>(words[2 * h + 1]);
          }
          hopper::st_shared_v4((h == 0 ? dst0 : dst1) + row_offset, make_uint4(a.x, a.y, b.x, b.y));
        }
      }
    }
  }

  static constexpr uint32_t kSyncChunks = [] {
    uint32_t mask = 0;
    for (int c = 0; c < Staging::kChunks; ++c) mask |= Staging::needs_sync(c) ? 1u << c : 0u;
    return mask;
  }();
};

}  // namespace etap::decoding
