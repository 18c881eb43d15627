// Compile-time shape of the ETAP decode kernel.
#pragma once

#include <cstdint>

#include "common/constants.hpp"
#include "hopper/wgmma.cuh"

namespace etap::decoding {

// Head dims the kernels are built for (validate.cpp lists the same pairs for the API).
template <int kDqk_, int kDv_>
struct HeadDimsOf {
  static constexpr int kDqk = kDqk_, kDv = kDv_;
};
using DimsMla = HeadDimsOf<mla::kDqk, mla::kDv>;  // 576 / 512: DeepSeek-V2/V3/R1, Kimi-K2
using DimsLatent = HeadDimsOf<512, 512>;          // the latent part without RoPE
using DimsRank256 = HeadDimsOf<320, 256>;         // kv_lora_rank 256 ‖ 64 RoPE

template <int kN_, typename T, class Dims = DimsMla, bool kTiled_ = false>
struct KernelConfig {
  using Element = T;  // __nv_bfloat16 or __half (q, kv, out, Pᵀ)
  // Requests have several row tiles (or h_kv > 1): a CTA's columns map to rows through its tile (CtaRows).
  static constexpr bool kTiled = kTiled_;

  static constexpr int kN = kN_;         // query rows per CTA: a row tile rounded up to a multiple of 16
  static constexpr int kHalfN = kN / 2;  // Sᵀ columns (query rows) owned by each consumer warpgroup
  static constexpr int kPageTokens = kBlockTokens;  // one KV block = one wgmma M tile
  static constexpr int kDqk = Dims::kDqk, kDv = Dims::kDv;
  static constexpr int kBoxCols = 64;             // TMA box / swizzle atom width (128 bytes)
  static constexpr int kBoxes = kDqk / kBoxCols;  // boxes per KV block (9 at d_qk = 576)
  static constexpr int kVBoxes = kDv / kBoxCols;  // the first kVBoxes boxes are also V
  static constexpr int kStages = 2;               // whole pages in flight / in use
  static constexpr int kConsumerWarpgroups = 2;
  static constexpr int kVTiles = kVBoxes / kConsumerWarpgroups;  // m64 tiles of Oᵀ per consumer warpgroup
  static constexpr int kWarpgroupThreads = hopper::kWarpgroupThreads;
  static constexpr int kConsumerWarps =
      hopper::kWarpgroupWarps * kConsumerWarpgroups;  // arrive on empty / q_empty
  static constexpr int kConsumerThreads = kWarpgroupThreads * kConsumerWarpgroups;
  static constexpr int kThreads = kConsumerThreads + kWarpgroupThreads;  // + the producer warpgroup
  static constexpr int kProducerRegs = 40, kConsumerRegs = 232;
  static constexpr int kQkSteps = kDqk / 16;         // k16 steps of Sᵀ = K·Qᵀ
  static constexpr int kPvSteps = kPageTokens / 16;  // k16 steps of Oᵀ += Vᵀ·Pᵀ
  static constexpr uint32_t kBoxBytes = kPageTokens * kBoxCols * sizeof(T);
  static constexpr uint32_t kPageBytes = kBoxes * kBoxBytes;

  static_assert(kN % 16 == 0 && kN >= 16 && kN <= 64, "N must be a multiple of 16 in [16, 64]");
  static_assert(sizeof(T) == 2, "16-bit elements only");
  static_assert(kPageTokens == 64, "a KV block is one wgmma M tile");
  static_assert(kDqk % kBoxCols == 0 && kDv % (kBoxCols * kConsumerWarpgroups) == 0 && kDv <= kDqk,
                "head dims in whole boxes; d_v split evenly over the consumer warpgroups");
  static_assert(kProducerRegs * kWarpgroupThreads + kConsumerRegs * kConsumerThreads <= 65536);
};

}  // namespace etap::decoding
