// The decode kernel's one shared-memory struct.
#pragma once

#include <cstdint>

#include "decode/kernel/config.hpp"

namespace etap::decoding {

inline constexpr int kMaxDynamicSmem = 232448;  // 227 KiB per block on sm_90

template <class Cfg>
struct SharedStorage {
  using T = typename Cfg::Element;
  // [stage][box][64 tokens × 64 cols], 128B-swizzled by TMA. K = all 9 boxes; V = boxes 0..7, read
  // transposed (MN-major) by the Oᵀ wgmma.
  alignas(1024) T kv[Cfg::kStages][Cfg::kBoxes][Cfg::kPageTokens * Cfg::kBoxCols];
  // [box][N query rows × 64 cols], 128B-swizzled; rows ≥ R stay zero.
  alignas(1024) T q[Cfg::kBoxes][Cfg::kN * Cfg::kBoxCols];
  // Pᵀ as the B operand of Oᵀ += Vᵀ·Pᵀ: [N query rows × 64 kv], K-major, 128B-swizzled.
  alignas(1024) T p[Cfg::kN * Cfg::kPageTokens];
  // [parity][warpgroup][warp][column]: per-warp column maxima (double-buffered by page parity); the
  // epilogue reuses it for the per-warp column sums.
  float column_partial[2][Cfg::kConsumerWarpgroups][4][Cfg::kHalfN];
  float alpha[Cfg::kN];          // rescale of Oᵀ columns for the current page
  float row_sum[Cfg::kN];        // softmax denominators of the segment (epilogue)
  uint64_t full[Cfg::kStages];   // TMA landed a page (transaction count)
  uint64_t empty[Cfg::kStages];  // the 8 consumer warps released a page
  uint64_t q_full;               // TMA landed the segment's Q
  uint64_t q_empty;              // the 8 consumer warps finished their last Sᵀ of the segment
};

}  // namespace etap::decoding
