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

// How the cache stores a token (etap::KvFormat). The consumers always read bf16/fp16 boxes from the ring: for
// the FP8 formats the producer warpgroup's other warps dequantise each block into it (fp8_convert.cuh).
enum class CacheFormat : int {
  kDense = 0,         // d_qk values of T
  kFp8PerTensor = 1,  // d_qk e4m3 bytes, one scale for the cache (*descale_k, folded into logits and O)
  kFp8V32 = 2,        // DeepSeek-V3.2's 656-byte token: 512 e4m3, 4 fp32 group scales, 64 bf16 RoPE
};

// The compile-time choice of the per-tensor FP8 pipeline (bench/experiments/fp8_critical_path.md, 2(d)):
// true: an e4m3-only ring and the register-operand consumer (fp8_consumer.cuh), which builds both wgmmas'
// A fragments from the e4m3 bytes; false: the converter warps' in-ring dequantisation (fp8_convert.cuh).
// V3.2 always takes the converter path (its register form is not written yet).
inline constexpr bool kRegisterFp8PerTensor = true;
// Query rows per CTA up to which the register path runs. N = 64 takes the converter path: there each
// register warpgroup converts all of K; the register path measured 5–12% slower there in two runs and the
// converter 18–20% faster in a third (docs/PERF.md, 2026-12-02d run 6, 2026-12-02e run 2, 2026-12-02f run 2).
inline constexpr int kRegisterFp8MaxRows = 48;

// kRegisterFp8Allowed_ = false keeps a per-tensor FP8 kernel on the converter path whatever
// kRegisterFp8PerTensor says: for consumers that read the 16-bit ring (the benchmark's padded baseline).
template <int kN_, typename T, class Dims = DimsMla, bool kTiled_ = false,
          CacheFormat kFormat_ = CacheFormat::kDense, bool kRegisterFp8Allowed_ = true>
struct KernelConfig {
  using Element = T;  // __nv_bfloat16 or __half (q, kv, out, Pᵀ)
  static constexpr CacheFormat kFormat = kFormat_;
  static constexpr bool kFp8 = kFormat != CacheFormat::kDense;
  // FP8 read from e4m3 bytes by the consumers themselves (Fp8Consumer): no converter warps, no bf16 copy.
  static constexpr bool kRegisterFp8 = kFormat == CacheFormat::kFp8PerTensor && kRegisterFp8PerTensor &&
                                       kRegisterFp8Allowed_ && kN_ <= kRegisterFp8MaxRows;
  // Requests have several row tiles (or h_kv > 1): a CTA's columns map to rows through its tile (CtaRows).
  static constexpr bool kTiled = kTiled_;

  static constexpr int kN = kN_;         // query rows per CTA: a row tile rounded up to a multiple of 16
  static constexpr int kHalfN = kN / 2;  // Sᵀ columns (query rows) owned by each consumer warpgroup
  static constexpr int kPageTokens = kBlockTokens;  // one KV block = one wgmma M tile
  static constexpr int kDqk = Dims::kDqk, kDv = Dims::kDv;
  static constexpr int kBoxCols = 64;             // TMA box / swizzle atom width (128 bytes)
  static constexpr int kBoxes = kDqk / kBoxCols;  // boxes per KV block (9 at d_qk = 576)
  static constexpr int kVBoxes = kDv / kBoxCols;  // the first kVBoxes boxes are also V
  // e4m3 bytes of a block in the register-FP8 ring: kBoxes boxes of 64 tokens × 64 bytes, no swizzle.
  static constexpr uint32_t kFp8BoxBytes = kPageTokens * kBoxCols;
  static constexpr uint32_t kFp8BlockBytes = kBoxes * kFp8BoxBytes;
  static constexpr uint32_t kSmallSmem = 4096;  // statistics, alpha, row sums, barriers (kernel.cuh asserts)
  // Register FP8 below N = 64: Sᵀ split over d between the consumer warpgroups (fp8_consumer.cuh), which
  // exchange their partial halves (fp32, both directions; 4 registers of 128 threads per 8 columns).
  // Sᵀ split over d below N = 64 (consumer.cuh, fp8_consumer.cuh): each consumer warpgroup computes the
  // partial Sᵀ of all N columns over half of d's k-steps, so the K tile is read from shared memory once per
  // block instead of once per warpgroup, and the halves are exchanged. At N = 64 the N-column partial (32
  // registers) next to Oᵀ (128) does not fit: each warpgroup then computes its own N/2 columns over all of d.
  static constexpr bool kScoresSplitD = kN < 64;
  static constexpr bool kFp8SplitD = kRegisterFp8 && kScoresSplitD;
  static constexpr uint32_t kExchangeBytes = kFp8SplitD ? 2 * (kN / 4) * 128 * 4 : 0;
  // Whole pages in flight / in use. Register FP8: as many e4m3 stages as fit next to Q, Pᵀ, the exchange
  // and kSmallSmem in 227 KiB (5 at N = 16, 4 at N = 32 and 48), at most kMaxFp8Stages.
  static constexpr int kMaxFp8Stages = 5;
  static constexpr int kFp8FittingStages = static_cast<int>(
      (232448 - (kBoxes * kN * kBoxCols + kN * kPageTokens) * sizeof(T) - kExchangeBytes - kSmallSmem) /
      kFp8BlockBytes);
  static constexpr int kStages =
      !kRegisterFp8 ? 2 : (kFp8FittingStages < kMaxFp8Stages ? kFp8FittingStages : kMaxFp8Stages);
  // 16-bit elements of one ring box: a bf16/fp16 box, or (register FP8) the 4096 e4m3 bytes of one.
  static constexpr int kRingBoxElements =
      kRegisterFp8 ? static_cast<int>(kFp8BoxBytes / sizeof(T)) : kPageTokens * kBoxCols;
  static constexpr int kConsumerWarpgroups = 2;
  static constexpr int kVTiles = kVBoxes / kConsumerWarpgroups;  // m64 tiles of Oᵀ per consumer warpgroup
  static constexpr int kWarpgroupThreads = hopper::kWarpgroupThreads;
  static constexpr int kConsumerWarps =
      hopper::kWarpgroupWarps * kConsumerWarpgroups;  // arrive on empty / q_empty
  static constexpr int kConsumerThreads = kWarpgroupThreads * kConsumerWarpgroups;
  static constexpr int kThreads = kConsumerThreads + kWarpgroupThreads;  // + the producer warpgroup
  // setmaxnreg moves registers within the CTA's launch allocation (65536 / 384 threads = 168 each, rounded
  // down to a multiple of 8): 40 · 128 + 232 · 256 = 168 · 384. FP8: the producer warpgroup's warps 1..3
  // convert the staged e4m3 block into the ring stage (fp8_convert.cuh); the producer warp and the
  // converter each fit 40 alone, but not together (ptxas -v: 24-36 bytes of spills), so FP8 moves 8
  // registers per consumer thread to the producer warpgroup: 56 · 128 + 224 · 256 = 168 · 384. Register FP8
  // has no converter: the dense split.
  static constexpr bool kConverterWarps = kFp8 && !kRegisterFp8;
  static constexpr int kProducerRegs = kConverterWarps ? 56 : 40, kConsumerRegs = kConverterWarps ? 224 : 232;
  static constexpr int kLaunchRegs = 65536 / kThreads / 8 * 8;
  static constexpr int kConverterThreads = kWarpgroupThreads - kWarpSize;
  static constexpr int kQkSteps = kDqk / 16;         // k16 steps of Sᵀ = K·Qᵀ
  static constexpr int kPvSteps = kPageTokens / 16;  // k16 steps of Oᵀ += Vᵀ·Pᵀ
  static constexpr uint32_t kBoxBytes = kPageTokens * kBoxCols * sizeof(T);
  static constexpr uint32_t kPageBytes = kBoxes * kBoxBytes;

  static_assert(kN % 16 == 0 && kN >= 16 && kN <= 64, "N must be a multiple of 16 in [16, 64]");
  static_assert(sizeof(T) == 2, "16-bit elements only");
  static_assert(kPageTokens == 64, "a KV block is one wgmma M tile");
  static_assert(kDqk % kBoxCols == 0 && kDv % (kBoxCols * kConsumerWarpgroups) == 0 && kDv <= kDqk,
                "head dims in whole boxes; d_v split evenly over the consumer warpgroups");
  // FP8 per-tensor at small N: ring stage 1's blocks are staged in a separate buffer (fp8_staging.hpp) so
  // that two FP8 blocks (74 KB) can be in flight, not one. It fits next to a Q of N ≤ 32 rows: ring + Q + Pᵀ
  // + the buffer + kSmallSmem (statistics, barriers) ≤ 227 KiB (kernel.cuh asserts the real size).
  static constexpr uint32_t kFp8StagingBytes = kFp8BlockBytes;  // e4m3: one byte each
  static constexpr bool kSeparateStaging = kFormat == CacheFormat::kFp8PerTensor && !kRegisterFp8 &&
                                           kStages * kPageBytes +
                                                   (kBoxes * kN * kBoxCols + kN * kPageTokens) * sizeof(T) +
                                                   kFp8StagingBytes + kSmallSmem <=
                                               232448;

  static_assert(!kFp8 || (kDqk == 576 && kDv == 512), "FP8 caches are built for the MLA head dims");
  static_assert(!kRegisterFp8 || kStages >= 2, "the register-FP8 ring needs two stages at least");
  static_assert(kProducerRegs * kWarpgroupThreads + kConsumerRegs * kConsumerThreads <=
                    kLaunchRegs * kThreads,
                "setmaxnreg.inc would wait forever for registers the CTA does not own");
};

}  // namespace etap::decoding
