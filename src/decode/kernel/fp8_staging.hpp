// Where an FP8 block waits in shared memory before the converter warps dequantise it (fp8_convert.cuh):
// inside the ring stage it will be converted into, at its upper end, as dense rows of 64 bytes (TMA boxes
// without swizzle: staging box j = 64 tokens × 64 cache bytes from byte column column(j)). The converter
// turns it into the 16-bit boxes the consumers read, in place: chunk by chunk (one 16-bit box each), every
// thread first reads its sources of the chunk, then the converter warps sync, then write. The order below is
// chosen so that a chunk's writes only ever overwrite staging bytes no later chunk reads (in_place_safe()).
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
static_assert(Fp8Staging<false>::kOffset == 36864 && Fp8Staging<true>::kOffset == 28672);

}  // namespace etap::decoding
