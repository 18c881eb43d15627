// The decode kernel's one shared-memory struct.
#pragma once

#include <cstdint>

#include "decode/kernel/config.hpp"
#include "decode/kernel/timeline_events.hpp"

namespace etap::decoding {

inline constexpr int kMaxDynamicSmem = 232448;  // 227 KiB per block on sm_90

// FP8 (Cfg::kSeparateStaging): ring stage 1's staging buffer; nothing otherwise.
template <uint32_t kBytes>
struct Fp8StagingBuffer {
  alignas(1024) uint8_t bytes[kBytes];
};
template <>
struct Fp8StagingBuffer<0> {};

// Sᵀ split over d (Cfg::kScoresSplitD): the partial Sᵀ halves the consumer warpgroups hand each other
// (Consumer::exchange_scores): [receiving warpgroup][float4 of the half][thread]; nothing otherwise.
template <int kHalfVectors>
struct ScoreExchange {
  float4 half[2][kHalfVectors][128];
};
template <>
struct ScoreExchange<0> {};

template <class Cfg>
struct SharedStorage {
  using T = typename Cfg::Element;
  // [stage][box][64 tokens × 64 cols], 128B-swizzled by TMA. K = all 9 boxes; V = boxes 0..7, read
  // transposed (MN-major) by the Oᵀ wgmma. Register FP8: box = 64 tokens × 64 e4m3 bytes, no swizzle.
  alignas(1024) T kv[Cfg::kStages][Cfg::kBoxes][Cfg::kRingBoxElements];
  // [box][N query rows × 64 cols], 128B-swizzled; rows ≥ R stay zero.
  alignas(1024) T q[Cfg::kBoxes][Cfg::kN * Cfg::kBoxCols];
  // Pᵀ as the B operand of Oᵀ += Vᵀ·Pᵀ: [N query rows × 64 kv], K-major, 128B-swizzled.
  alignas(1024) T p[Cfg::kN * Cfg::kPageTokens];
  // [parity][warpgroup][warp][column]: per-warp column maxima (double-buffered by page parity); the
  // epilogue reuses it for the per-warp column sums.
  float column_partial[2][Cfg::kConsumerWarpgroups][4][Cfg::kHalfN];
  float alpha[Cfg::kN];         // rescale of Oᵀ columns for the current page
  float row_sum[Cfg::kN];       // softmax denominators of the segment (epilogue)
  uint64_t full[Cfg::kStages];  // TMA landed a page (transaction count), or FP8: the page is converted
  uint64_t box_full[Cfg::kStages]
                   [Cfg::kBoxes];  // dense whole-block loads: TMA landed box b (block_arrival.cuh)
  uint64_t empty[Cfg::kStages];    // the 8 consumer warps released a page
  uint64_t q_full;                 // TMA landed the segment's Q
  uint64_t q_empty;                // the 8 consumer warps finished their last Sᵀ of the segment
  // FP8 caches: the load landed a block's e4m3 bytes in the stage's staging (fp8_staging.hpp); `full` then
  // counts the converter threads' arrivals (+ V3.2's RoPE TMA) instead of the dense TMA.
  uint64_t staged[Cfg::kStages];
  uint64_t staging_empty;                 // kSeparateStaging: the converters read the buffer's block
  uint32_t converter_stop[Cfg::kStages];  // FP8: set by the producer before its last `staged` arrival
  Fp8StagingBuffer<Cfg::kSeparateStaging ? Cfg::kFp8StagingBytes : 0> staging;
  ScoreExchange<Cfg::kScoresSplitD ? Cfg::kN / 16 : 0> exchange;
#ifdef ETAP_TIMELINE
  uint32_t timeline_records[timeline::kRoles];  // the benchmark's timeline probe only: records per role
                                                // (timeline.cuh)
#endif
};

}  // namespace etap::decoding
