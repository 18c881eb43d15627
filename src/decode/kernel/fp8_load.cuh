// How the producer warp moves an FP8 block's cache bytes into a stage (kv_load.cuh picks the rows): e4m3
// rows into the stage's staging (fp8_staging.hpp) — TMA boxes of 64 bytes × the box's tokens, without
// swizzle, completing on the stage's `staged` barrier — and, for DeepSeek-V3.2's token, its 64 bf16 RoPE
// values straight into ring box 8 (128B swizzle, as a dense cache's box 8), completing on `full`.
// Register FP8 (Cfg::kRegisterFp8, per-tensor): the stage itself is the staging — the ring holds only the
// e4m3 boxes, which the consumers read (fp8_consumer.cuh); whole-block loads complete each box on its own
// `box_full` barrier, the chunk and gather loads the block on `full`.
#pragma once

#include <cuda.h>

#include "decode/kernel/fp8_staging.hpp"
#include "decode/kernel/params.hpp"
#include "decode/kernel/shared_storage.cuh"
#include "hopper/cp_async.cuh"
#include "hopper/pipeline.cuh"
#include "hopper/smem_access.cuh"
#include "hopper/smem_desc.cuh"
#include "hopper/tma.cuh"

namespace etap::decoding {

template <class Cfg>
struct Fp8Loads {
  static constexpr bool kV32 = Cfg::kFormat == CacheFormat::kFp8V32;
  using Staging = Fp8Staging<kV32, Cfg::kBoxBytes, Cfg::kBoxes>;
  static constexpr int kRopeBox = Cfg::kBoxes - 1;  // V3.2: ring box 8 = channels [512, 576), bf16
  // The rope map's column of channel 512: byte 528 of the token, in bf16 elements.
  static constexpr int kRopeElement = Staging::kRopeColumn / 2;
  static constexpr int kRopeRowBytes = hopper::kSwizzleRowBytes;
  static constexpr int kPiece = 16;  // cp.async bytes

  // Arrivals that complete a `staged` phase: the loading lane's one (TMA: with the transaction bytes), or,
  // for the gather, every lane of the producer warp after its own copies — a lane's arrive releases its own
  // cp.async writes, which the converter threads then read.
  static __device__ __forceinline__ uint32_t staged_arrivals(const KernelParams& p) {
    return p.kv_load == KvLoad::kGather ? kWarpSize : 1;
  }

  // Ring stage s's staging: the separate buffer for stage 1 when the config has one, else inside the stage.
  static __device__ __forceinline__ bool separate(int s) { return Cfg::kSeparateStaging && s == 1; }
  static __device__ __forceinline__ uint8_t* staging(SharedStorage<Cfg>& smem, int s) {
    if constexpr (Cfg::kRegisterFp8) return reinterpret_cast<uint8_t*>(smem.kv[s][0]);
    if constexpr (Cfg::kSeparateStaging)
      if (s == 1) return smem.staging.bytes;
    return reinterpret_cast<uint8_t*>(smem.kv[s][0]) + Staging::kOffset;
  }

  // Lane 0, before loading a block for `stage`: its staging is free. In the stage: the consumers released
  // the stage (`empty`). The separate buffer: the converters read its previous block (`staging_empty`,
  // used once per use of stage 1, so it shares stage 1's phase); the converter then waits for `empty`.
  static __device__ __forceinline__ void wait_free(SharedStorage<Cfg>& smem,
                                                   const hopper::PipelineState<Cfg::kStages>& stage) {
    if constexpr (Cfg::kRegisterFp8) {
      hopper::mbarrier_wait(&smem.empty[stage.index], stage.producer_phase());
    } else if (separate(stage.index)) {
      if constexpr (Cfg::kSeparateStaging) hopper::mbarrier_wait(&smem.staging_empty, stage.producer_phase());
    } else {
      hopper::mbarrier_wait(&smem.empty[stage.index], stage.producer_phase());
    }
  }

  // Lane 0, after the CTA's last block: the converter warps walk no plan (their registers are few); they
  // convert until a `staged` phase arrives without bytes and with the stage's converter_stop set. It takes
  // the next stage in order once that stage's staging is free, i.e. once the converters took the stage's
  // previous block: its flag was read as 0 before this write, and every earlier block is converted first.
  static __device__ __forceinline__ void stop_converter(const KernelParams& p, SharedStorage<Cfg>& smem,
                                                        const hopper::PipelineState<Cfg::kStages>& stage) {
    wait_free(smem, stage);
    smem.converter_stop[stage.index] = 1;
    hopper::mbarrier_arrive(&smem.staged[stage.index],
                            staged_arrivals(p));  // release: the converter sees the flag
  }

  // Lane 0, after wait_free: the transaction bytes of `tokens` rows of every staging box (and RoPE rows).
  static __device__ __forceinline__ void expect(SharedStorage<Cfg>& smem, int s, uint32_t tokens) {
    hopper::mbarrier_arrive_expect_tx(Cfg::kRegisterFp8 ? &smem.full[s] : &smem.staged[s],
                                      tokens * Staging::kBoxes * Staging::kRowBytes);
    if constexpr (kV32) hopper::mbarrier_arrive_expect_tx(&smem.full[s], tokens * kRopeRowBytes);
  }

  // The boxes of tokens [token, token + box tokens) of `page` into rows [row, +box tokens) of the staging.
  static __device__ __forceinline__ void load(SharedStorage<Cfg>& smem, int s, const CUtensorMap* kv_map,
                                              const CUtensorMap* rope_map, int row, int32_t kv_head,
                                              int32_t token, int32_t page) {
    uint8_t* base = staging(smem, s);
    uint64_t* landed = Cfg::kRegisterFp8 ? &smem.full[s] : &smem.staged[s];
#pragma unroll 1
    for (int j = 0; j < Staging::kBoxes; ++j)
      hopper::tma_load_4d(base + j * Staging::kBoxBytes + row * Staging::kRowBytes, kv_map,
                          Staging::column(j), kv_head, token, page, landed);
    if constexpr (kV32)
      hopper::tma_load_4d(smem.kv[s][kRopeBox] + row * Cfg::kBoxCols, rope_map, kRopeElement, kv_head, token,
                          page, &smem.full[s]);
  }

  // Register FP8, whole blocks: box j of the block, 64 tokens from `token` of `page`, on box_full[s][j]
  // (block_arrival.cuh), so that the consumers start on a block's first boxes while the rest lands.
  static __device__ __forceinline__ void load_boxes(SharedStorage<Cfg>& smem, int s,
                                                    const CUtensorMap* kv_map, int32_t kv_head, int32_t token,
                                                    int32_t page) {
    static_assert(Cfg::kRegisterFp8 && Staging::kBoxBytes == Cfg::kFp8BoxBytes);
    uint8_t* base = staging(smem, s);
    for (int j = 0; j < Staging::kBoxes; ++j) {
      uint64_t* landed = &smem.box_full[s][j];
      hopper::mbarrier_arrive_expect_tx(landed, Staging::kBoxBytes);
      hopper::tma_load_4d(base + j * Staging::kBoxBytes, kv_map, Staging::column(j), kv_head, token, page,
                          landed);
    }
  }

  // Gather: the 16-byte pieces of one token's cache row (`src`, bytes) into stage row `row`. Lane l copies
  // piece l (staging box l / 4, bytes [16l, +16) of the row) and, for lanes below kSecondPieces, one more:
  // piece 32 + l of the staging (box 8, from byte 512) for l < 4, V3.2's RoPE piece l − 4 (bytes
  // [528 + 16(l − 4), +16), swizzled chunk l − 4 of ring box 8) for 4 ≤ l < 12.
  static constexpr int kStagedPieces = Staging::kBoxes * Staging::kRowBytes / kPiece;  // 36
  static constexpr int kRopePieces = kV32 ? kRopeRowBytes / kPiece : 0;                // 8
  static constexpr int kSecondPieces = kStagedPieces + kRopePieces - kWarpSize;        // 4 or 12
  static_assert(kStagedPieces >= kWarpSize && kSecondPieces <= kWarpSize && Staging::column(8) == 512);

  static __device__ __forceinline__ void gather_row(uint32_t staging_base, uint32_t stage_base,
                                                    const uint8_t* src, int row, int lane) {
    constexpr int kBoxPieces = Staging::kRowBytes / kPiece;
    hopper::cp_async_16(staging_base + (lane / kBoxPieces) * Staging::kBoxBytes + row * Staging::kRowBytes +
                            (lane % kBoxPieces) * kPiece,
                        src + lane * kPiece);
    if (lane < kBoxPieces) {
      hopper::cp_async_16(staging_base + 8 * Staging::kBoxBytes + row * Staging::kRowBytes + lane * kPiece,
                          src + Staging::column(8) + lane * kPiece);
    } else if (kV32 && lane < kSecondPieces) {
      const int r = lane - kBoxPieces;
      hopper::cp_async_16(stage_base + kRopeBox * Cfg::kBoxBytes + hopper::sw128_offset(row, 8 * r),
                          src + Staging::kRopeColumn + r * kPiece);
    }
  }

  // Gather, in every lane after its own copies are complete and fenced: its arrival on `staged`; lane 0 also
  // makes V3.2's RoPE arrival on `full` (read only by wgmma, after the lanes' proxy fences and the warp
  // sync).
  // Register FP8: every lane's arrival on `full` (the consumers read the copies generically).
  static __device__ __forceinline__ void gather_done(SharedStorage<Cfg>& smem, int s, int lane) {
    hopper::mbarrier_arrive(Cfg::kRegisterFp8 ? &smem.full[s] : &smem.staged[s]);
    if constexpr (kV32)
      if (lane == 0) hopper::mbarrier_arrive(&smem.full[s]);
  }
};

}  // namespace etap::decoding
