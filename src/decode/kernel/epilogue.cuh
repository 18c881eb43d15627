// Epilogue: reduces the softmax denominators, transposes Oᵀ back while storing O (final bf16/fp16 output,
// or an fp32 partial for a split request), and writes the LSE.
#pragma once

#include <cmath>

#include "common/constants.hpp"
#include "decode/kernel/barriers.hpp"
#include "decode/kernel/fp8_fragment_maps.hpp"
#include "decode/kernel/lane_transpose.cuh"
#include "decode/kernel/params.hpp"
#include "decode/kernel/schedule.cuh"
#include "decode/kernel/shared_storage.cuh"
#include "decode/kernel/softmax.cuh"
#include "hopper/barrier.cuh"
#include "hopper/wgmma.cuh"

namespace etap::decoding {

// A request with no key: out = 0, lse = +inf (FlashMLA's convention) for this CTA's rows. Threads
// [0, threads) share the rows.
template <typename T, class Rows>
__device__ void write_empty_request(const KernelParams& p, const Rows& rows, int32_t request, int thread,
                                    int threads) {
  constexpr int kChunk = 16 / sizeof(T);  // elements per 16-byte store
  const int chunks = p.d_v / kChunk;
  const int columns = p.tiling.tile_rows();
  for (int idx = thread; idx < columns * chunks; idx += threads) {
    const int32_t row = rows.row(p, idx / chunks);
    if (row < 0) continue;
    T* out = static_cast<T*>(p.out) + out_offset(p, request, rows.out_row(p, row)) + (idx % chunks) * kChunk;
    *reinterpret_cast<uint4*>(out) = make_uint4(0, 0, 0, 0);
  }
  if (p.lse != nullptr)
    for (int c = thread; c < columns; c += threads) {
      const int32_t row = rows.row(p, c);
      if (row >= 0) p.lse[lse_offset(p, request, rows.out_row(p, row))] = INFINITY;
    }
}

// kPermutedD (the register-FP8 consumer): Oᵀ row r of tile t is channel sigma(wg, t, r)
// (fp8_fragment_maps.hpp), so a thread's 8 values of a column are contiguous channels, stored at once.
template <class Cfg, bool kPermutedD = false, class Softmax, class Rows>
__device__ void store_segment(const KernelParams& p, SharedStorage<Cfg>& smem, const Rows& rows,
                              const Segment& seg, const float (&o)[Cfg::kVTiles][Cfg::kN / 2],
                              const Softmax& softmax, float (*partial)[Cfg::kHalfN], int wg, int warp,
                              int lane, float out_scale = 1.f) {
  using T = typename Cfg::Element;
  constexpr int kCols = Softmax::kCols;
  const int col0 = wg * Cfg::kHalfN;

  // Column sums: 8 row-lanes by shuffles, 4 warps through smem, then shared with the other warpgroup.
  float sum[kCols];
#pragma unroll
  for (int c = 0; c < kCols; ++c) {
    sum[c] = softmax.sum[c];
    sum[c] += __shfl_xor_sync(kFullWarpMask, sum[c], 4);
    sum[c] += __shfl_xor_sync(kFullWarpMask, sum[c], 8);
    sum[c] += __shfl_xor_sync(kFullWarpMask, sum[c], 16);
  }
  if (lane < 4) {
#pragma unroll
    for (int c = 0; c < kCols; ++c) partial[warp][slot_column(c, lane)] = sum[c];
  }
  hopper::named_barrier_sync(barrier_id(NamedBarrier::kColumnMaxWritten, wg), Cfg::kWarpgroupThreads);
  const bool split = seg.num_splits > 1;
  if (warp == 0 && lane < 4) {
#pragma unroll
    for (int c = 0; c < kCols; ++c) {
      const int col = slot_column(c, lane);
      const float total = partial[0][col] + partial[1][col] + partial[2][col] + partial[3][col];
      smem.row_sum[col0 + col] = total;
      const int32_t row = rows.row(p, col0 + col);
      if (row >= 0) {
        const float lse2 = total > 0.f ? softmax.max[c] + log2f(total) : -INFINITY;
        if (split) {
          p.partial_lse[partial_row(p, seg.slot, row)] = lse2;
        } else if (p.lse != nullptr) {
          p.lse[lse_offset(p, seg.request, rows.out_row(p, row))] =
              total > 0.f ? lse2 * p.lse_out_scale : INFINITY;
        }
      }
    }
  }
  hopper::named_barrier_sync(barrier_id(NamedBarrier::kRowSumReady), Cfg::kConsumerThreads);

  float inv[Cfg::kN / 4];  // out_scale/l for this thread's columns of Oᵀ (kv_scale.cuh: FP8's descale_k)
#pragma unroll
  for (int c = 0; c < Cfg::kN / 4; ++c) {
    const float l = smem.row_sum[slot_column(c, lane)];
    inv[c] = l > 0.f ? out_scale / l : 0.f;
  }
  const int thread = threadIdx.x % Cfg::kWarpgroupThreads;
  if constexpr (kPermutedD) {
    static_assert(Cfg::kVTiles == 4, "8 channels per thread and column");
    // Registers i (h = 0) and i + 2 (h = 1) hold the same column; channel sigma = d0 + 2t + h.
    const int d0 = fp8_fragments::sigma(wg, 0, 16 * warp + lane / 4);
#pragma unroll
    for (int i = 0; i < Cfg::kN / 2; ++i) {
      if ((i / 2) % 2 != 0) continue;
      const auto rc = hopper::accumulator_coord(thread, i);
      const int32_t row = rows.row(p, rc.col);
      if (row < 0) continue;
      const float scale = inv[column_slot(i)];
      float v[8];
#pragma unroll
      for (int t = 0; t < Cfg::kVTiles; ++t) {
        v[2 * t] = o[t][i] * scale;
        v[2 * t + 1] = o[t][i + 2] * scale;
      }
      if (split) {
        auto* dst = reinterpret_cast<float4*>(p.partial_o + partial_row(p, seg.slot, row) * Cfg::kDv + d0);
        dst[0] = make_float4(v[0], v[1], v[2], v[3]);
        dst[1] = make_float4(v[4], v[5], v[6], v[7]);
      } else {
        T* dst = static_cast<T*>(p.out) + out_offset(p, seg.request, rows.out_row(p, row)) + d0;
        uint32_t packed[4];
#pragma unroll
        for (int k = 0; k < 4; ++k) packed[k] = hopper::pack_pair<T>(v[2 * k], v[2 * k + 1]);
        *reinterpret_cast<uint4*>(dst) = make_uint4(packed[0], packed[1], packed[2], packed[3]);
      }
    }
  } else if (split) {
    // fp32 partials: a warp store covers 8 consecutive channels (one whole sector) of 4 columns.
#pragma unroll
    for (int i = 0; i < Cfg::kN / 2; ++i) {
      const auto rc = hopper::accumulator_coord(thread, i);  // row = d within the tile, col = query column
      const int32_t row = rows.row(p, rc.col);
      if (row < 0) continue;
      float* dst = p.partial_o + partial_row(p, seg.slot, row) * Cfg::kDv;
#pragma unroll
      for (int t = 0; t < Cfg::kVTiles; ++t)
        dst[wg * Cfg::kVTiles * Cfg::kBoxCols + t * Cfg::kBoxCols + rc.row] = o[t][i] * inv[column_slot(i)];
    }
  } else {
    // Final output. A column's values in a thread are channels g and g + 8 (g = lane / 4) of each of its
    // warp's 16-channel slices of the kVTiles tiles; the 8 lanes of one q hold the slice's other channels.
    // Transposed across those 8 lanes (lane_transpose, stride 4), lane g holds contiguous channels: with 4
    // tiles, 8 values of slice half e = g (tile e / 2, channels 8 (e % 2) + 0 … 7); with 2 tiles, 4 values of
    // slice half g % 4, channels 4 (g / 4) + 0 … 3. A warp store then covers whole 32-byte sectors; storing
    // the 2-byte elements directly wrote 16 of each sector's 32 bytes per instruction.
    constexpr int kValues = 2 * Cfg::kVTiles;  // per column: tiles × the two channel halves
    static_assert(kValues == 4 || kValues == 8, "2 or 4 V tiles per warpgroup");
    const int g = lane / 4, e = g % kValues;
    const int channel = wg * Cfg::kVTiles * Cfg::kBoxCols + (e / 2) * Cfg::kBoxCols + 16 * warp +
                        8 * (e % 2) + (kValues == 4 ? 4 * (g / 4) : 0);
#pragma unroll
    for (int i = 0; i < Cfg::kN / 2; ++i) {
      if ((i / 2) % 2 != 0) continue;  // register i + 2 is the same column's channel half 1
      const int col = hopper::accumulator_coord(thread, i).col;
      const float scale = inv[column_slot(i)];
      float v[kValues];
#pragma unroll
      for (int t = 0; t < Cfg::kVTiles; ++t) {
        v[2 * t] = o[t][i] * scale;
        v[2 * t + 1] = o[t][i + 2] * scale;
      }
      lane_transpose<kValues, 4>(v, lane);  // every lane, also those of absent rows: full-mask shuffles
      const int32_t row = rows.row(p, col);
      if (row < 0) continue;
      T* dst = static_cast<T*>(p.out) + out_offset(p, seg.request, rows.out_row(p, row)) + channel;
      uint32_t packed[kValues / 2];
#pragma unroll
      for (int k = 0; k < kValues / 2; ++k) packed[k] = hopper::pack_pair<T>(v[2 * k], v[2 * k + 1]);
      if constexpr (kValues == 8)
        *reinterpret_cast<uint4*>(dst) = make_uint4(packed[0], packed[1], packed[2], packed[3]);
      else
        *reinterpret_cast<uint2*>(dst) = make_uint2(packed[0], packed[1]);
    }
  }
}

}  // namespace etap::decoding
