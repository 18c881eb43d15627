// Where an FP8 block waits in shared memory before the converter warps dequantise it (fp8_convert.cuh):
// inside the ring stage it will be converted into, at its upper end, as dense rows of 64 bytes (TMA boxes
// without swizzle: staging box j = 64 tokens × 64 cache bytes from byte column column(j)). The converter
// turns it into the 16-bit boxes the consumers read, in place, by the walk below (Walk): rows in order,
// whose stores only ever overwrite staging rows read at the same or an earlier step (box level:
// in_place_safe(), a chunk's writes never reach a box a later chunk reads), the converter warps synced where
// a store could overtake another thread's read.
// This works at every N, where no separate staging buffer fits next to a 64-row Q. Where one fits (per-tensor
// format, N ≤ 32: KernelConfig::kSeparateStaging), ring stage 1's blocks use it instead (same box layout,
// nothing overlaps), so that a block can land while both ring stages are busy: two blocks in flight.
//   kFp8PerTensor: 9 staging boxes (all 576 e4m3 columns), chunk b from staging box b, b = 0..8.
//   kFp8V32: 8 latent staging boxes + 1 box from byte 512 (the 4 fp32 scales in its first 16 bytes; the
//     rest of it is RoPE, unused); the RoPE bf16 box is loaded by TMA straight into ring box 8 (128B
//     swizzle), so the staging ends below it. Chunk b (b = 0..7) reads staging box b and the scale box.
#pragma once

#include <cstdint>

#include "common/host_device.hpp"

namespace etap::decoding {

template <bool kV32, int kRingBoxBytes = 8192, int kRingBoxes = 9>
struct Fp8Staging {
  static constexpr int kRowBytes = 64;                        // bytes of a staging row (64 e4m3 channels)
  static constexpr int kTokens = 64;                          // rows of a staging box: one KV block
  static constexpr int kBoxBytes = kRowBytes * kTokens;       // 4096
  static constexpr int kLatentBoxes = kV32 ? 8 : kRingBoxes;  // staging boxes converted to ring boxes
  static constexpr int kBoxes = kLatentBoxes + (kV32 ? 1 : 0);
  static constexpr int kScaleBox = kLatentBoxes;  // V3.2: the box holding the scales
  static constexpr int kScaleColumn = 512;        // Fp8DeepSeekV32Token::kScaleOffset
  static constexpr int kRopeColumn = 528;         // Fp8DeepSeekV32Token::kRopeOffset (bytes)
  static constexpr int kRingBytes = kRingBoxBytes * kRingBoxes;
  // The end of the staging: the end of the stage, or (V3.2) the start of ring box 8 that TMA fills with RoPE.
  static constexpr int kEnd = kV32 ? kRingBoxBytes * kLatentBoxes : kRingBytes;
  static constexpr int kOffset = kEnd - kBoxes * kBoxBytes;  // staging start, bytes into the stage
  static constexpr int kChunks = kLatentBoxes;               // converted 16-bit boxes

  // Bytes the cache loads put into a stage per token: the staging rows, plus V3.2's 128 RoPE bytes.
  static constexpr int kTokenBytes = kBoxes * kRowBytes + (kV32 ? 128 : 0);

  // Cache byte column of staging box j.
  ETAP_HD static constexpr int column(int j) { return j < kLatentBoxes ? j * kRowBytes : kScaleColumn; }
  ETAP_HD static constexpr int box_offset(int j) { return kOffset + j * kBoxBytes; }

  // Chunk c writes ring box c; it overwrites staging box j iff their byte ranges intersect.
  ETAP_HD static constexpr bool overwrites(int chunk, int j) {
    const int w0 = chunk * kRingBoxBytes, w1 = w0 + kRingBoxBytes;
    const int s0 = box_offset(j), s1 = s0 + kBoxBytes;
    return w0 < s1 && s0 < w1;
  }
  // Whether chunk c reads staging box j.
  ETAP_HD static constexpr bool reads(int chunk, int j) { return j == chunk || (kV32 && j == kScaleBox); }
  // A chunk must sync its readers before writing only if its writes reach staging at all.
  ETAP_HD static constexpr bool needs_sync(int chunk) {
    for (int j = 0; j < kBoxes; ++j)
      if (overwrites(chunk, j)) return true;
    return false;
  }
  // The converter's walk (fp8_convert.cuh) sees the staging as kRows rows of 64 bytes, row G = box G / 64,
  // token G % 64 (the boxes are contiguous), and the ring stage as rows of 128 bytes, ring row G = 16-bit
  // box G / 64, token G % 64. Thread t of kThreads converts 16-byte piece t % 4 of rows t / 4 + kRowStep·k,
  // step k = 0, 1, ..., kSteps − 1: every thread gets the same number of pieces (24; V3.2: 21 or 22) and
  // every address is a per-thread base plus k times a constant. Steps go in groups of kGroupSteps; a thread
  // loads group g + 1 before it stores group g. In place, a group syncs the converter warps before its
  // stores where those overwrite staging rows that some thread may not have read yet (sync_groups()).
  template <int kThreads, int kGroupSteps = 3>
  struct Walk {
    static constexpr int kStepsPerGroup = kGroupSteps;
    static constexpr int kPieceBytes = 16;                            // one ld/st.shared.v4
    static constexpr int kRowPieces = kRowBytes / kPieceBytes;        // 4
    static constexpr int kRowStep = kThreads / kRowPieces;            // 24 rows between a thread's steps
    static constexpr int kRingRowBytes = kRingBoxBytes / kTokens;     // 128
    static constexpr int kRows = kLatentBoxes * kTokens;              // rows converted: 576 or 512
    static constexpr int kStagingRows = kBoxes * kTokens;             // 576 (V3.2: + the scale box)
    static constexpr int kSteps = (kRows + kRowStep - 1) / kRowStep;  // 24 or 22
    // Groups in pairs (the converter's two register sets); steps past kSteps are empty.
    static constexpr int kGroups = ((kSteps + kGroupSteps - 1) / kGroupSteps + 1) / 2 * 2;
    static constexpr bool kEveryStepFull = kRows % kRowStep == 0 && kSteps == kGroups * kGroupSteps;
    static_assert(kThreads % kRowPieces == 0 && kRowStep % 8 == 0, "one swizzle phase per thread");
    static_assert(kOffset % kRowBytes == 0, "whole rows");

    // Thread t's row at step k (valid below kRows), its source and its two destination pieces (the 16-bit
    // row's 16-byte chunks 2p and 2p + 1, 128B-swizzled: chunk ^ row % 8), in bytes from the staging start
    // and the stage start; V3.2: the byte of its token's group scale in the scale box.
    ETAP_HD static constexpr int row(int t, int k) { return t / kRowPieces + kRowStep * k; }
    ETAP_HD static constexpr int source(int t, int k) {
      return row(t, k) * kRowBytes + (t % kRowPieces) * kPieceBytes;
    }
    ETAP_HD static constexpr int destination(int t, int k, int half) {
      const int chunk = (2 * (t % kRowPieces) + half) ^ (row(t, k) % 8);
      return row(t, k) * kRingRowBytes + chunk * kPieceBytes;
    }
    ETAP_HD static constexpr int scale_byte(int t, int k) {
      const auto r = static_cast<unsigned>(row(t, k));  // unsigned: % and / by powers of two are masks
      constexpr auto kTokensU = static_cast<unsigned>(kTokens);
      return static_cast<int>((kLatentBoxes * kTokensU + r % kTokensU) * kRowBytes + r / (2 * kTokensU) * 4);
    }

    // The last step that reads staging row G: its own, or (V3.2's scale box) every step.
    ETAP_HD static constexpr int read_step(int G) { return G < kRows ? G / kRowStep : kSteps - 1; }
    // The last step reading any staging row that the stores of step k overwrite (−1: none).
    ETAP_HD static constexpr int need(int k) {
      int n = -1;
      for (int r = k * kRowStep; r < (k + 1) * kRowStep && r < kRows; ++r)
        for (int G = (r * kRingRowBytes - kOffset) / kRowBytes;
             G * kRowBytes + kOffset < (r + 1) * kRingRowBytes; ++G)
          if (G >= 0 && G < kStagingRows && read_step(G) > n) n = read_step(G);
      return n;
    }
    ETAP_HD static constexpr int last_step(int g) {
      return (g + 1) * kGroupSteps < kSteps ? (g + 1) * kGroupSteps - 1 : kSteps - 1;
    }
    // A sync in group g comes after the loads of group g + 1, so it covers every read through that group.
    ETAP_HD static constexpr int covered_by_sync(int g) { return last_step(g + 1 < kGroups ? g + 1 : g); }
    // Greedy: group g syncs iff some store of it overwrites a row whose reads no earlier sync covers.
    ETAP_HD static constexpr uint32_t sync_groups() {
      uint32_t mask = 0;
      int covered = -1;
      for (int g = 0; g < kGroups; ++g) {
        int n = -1;
        for (int k = g * kGroupSteps; k <= last_step(g); ++k) n = need(k) > n ? need(k) : n;
        if (n > covered) {
          mask |= 1u << g;
          covered = covered_by_sync(g);
        }
      }
      return mask;
    }
    // The schedule suffices: every overwritten row's reads are covered by a sync before the stores.
    ETAP_HD static constexpr bool safe() {
      int covered = -1;
      for (int g = 0; g < kGroups; ++g) {
        if ((sync_groups() >> g) & 1u) covered = covered_by_sync(g);
        for (int k = g * kGroupSteps; k <= last_step(g); ++k)
          if (need(k) > covered) return false;
      }
      return kOffset >= 0 && kOffset % 1024 == 0;
    }
  };

  // No chunk overwrites a staging box that a later chunk still reads (chunks run in order 0, 1, ...).
  ETAP_HD static constexpr bool in_place_safe() {
    for (int c = 0; c < kChunks; ++c)
      for (int j = 0; j < kBoxes; ++j)
        for (int later = c + 1; later < kChunks; ++later)
          if (overwrites(c, j) && reads(later, j)) return false;
    return kOffset >= 0 && kOffset % 1024 == 0;
  }
};

static_assert(Fp8Staging<false>::in_place_safe() && Fp8Staging<true>::in_place_safe());
static_assert(Fp8Staging<false>::Walk<96, 3>::safe() && Fp8Staging<true>::Walk<96, 2>::safe());
static_assert(Fp8Staging<false>::kOffset == 36864 && Fp8Staging<true>::kOffset == 28672);

}  // namespace etap::decoding
