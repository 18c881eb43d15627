// The decode kernel's one shared-memory struct.
#pragma once

#include <cstdint>

#include "decode/config.hpp"
#include "hopper/pipeline.cuh"

namespace etap::decoding {

inline constexpr int kMaxDynamicSmem = 232448;  // 227 KiB per block on sm_90

// Boxes of the KV ring: as many 8 KiB slots as fit beside Q, Pᵀ and the small arrays (25 at N = 16,
// 18 = two whole pages at N = 64). Freed box by box, the ring keeps more bytes in flight than whole-page
// stages could.
template <class Cfg>
struct SmemBudget {
  static constexpr int kSmallBytes = 2 * Cfg::kConsumerWarpgroups * 4 * Cfg::kHalfN * 4 + 2 * Cfg::kN * 4;
  static constexpr int kFixedBytes =
      Cfg::kBoxes * Cfg::kN * Cfg::kBoxCols * 2 + Cfg::kN * Cfg::kPageTokens * 2 + kSmallBytes + 2 * 8;
  static constexpr int bytes(int slots) { return (slots * (int(Cfg::kBoxBytes) + 16) + kFixedBytes + 1023) / 1024 * 1024; }
  static constexpr int slots() {
    int s = 0;
    while (bytes(s + 1) <= kMaxDynamicSmem) ++s;
    return s;
  }
  static constexpr int kSlots = slots();
  static_assert(kSlots >= Cfg::kBoxes + 1, "the ring must hold a page and the start of the next");
};

template <class Cfg>
struct SharedStorage {
  using T = typename Cfg::Element;
  static constexpr int kSlots = SmemBudget<Cfg>::kSlots;
  // Ring of [64 tokens × 64 cols] boxes, 128B-swizzled by TMA; box b of the n-th page streamed by this CTA
  // is ring use 9n + b. K = all 9 boxes of a page; V = boxes 0..7, read transposed (MN-major) by the Oᵀ wgmma.
  alignas(1024) T kv[kSlots][Cfg::kPageTokens * Cfg::kBoxCols];
  // [box][N query rows × 64 cols], 128B-swizzled; rows ≥ R stay zero.
  alignas(1024) T q[Cfg::kBoxes][Cfg::kN * Cfg::kBoxCols];
  // Pᵀ as the B operand of Oᵀ += Vᵀ·Pᵀ: [N query rows × 64 kv], K-major, 128B-swizzled.
  alignas(1024) T p[Cfg::kN * Cfg::kPageTokens];
  // [parity][warpgroup][warp][column]: per-warp column maxima (double-buffered by page parity); the
  // epilogue reuses it for the per-warp column sums.
  float column_partial[2][Cfg::kConsumerWarpgroups][4][Cfg::kHalfN];
  float alpha[Cfg::kN];    // rescale of Oᵀ columns for the current page
  float row_sum[Cfg::kN];  // softmax denominators of the segment (epilogue)
  uint64_t full[kSlots];   // TMA landed a box (transaction count)
  uint64_t empty[kSlots];  // the 8 consumer warps are done with a box
  uint64_t q_full;         // TMA landed the segment's Q
  uint64_t q_empty;        // the 8 consumer warps finished their last Sᵀ of the segment
};

// Ring position of box b of the n-th page this CTA streams.
template <class Cfg>
__device__ __forceinline__ hopper::RingPosition<SharedStorage<Cfg>::kSlots> box_position(uint32_t page_seq, int b) {
  return {page_seq * Cfg::kBoxes + b};
}

}  // namespace etap::decoding
