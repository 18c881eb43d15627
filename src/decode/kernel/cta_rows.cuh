// Device side of the row tiles: which query rows a CTA's Sᵀ columns are.
#pragma once

#include <cstdint>

#include "decode/kernel/params.hpp"

namespace etap::decoding {

// The query rows of a CTA as the consumers see them: a row tile (kTiled: several tiles per request, or h_kv >
// 1), or every row of the request (one tile: column c is row c, token c / h_q). The single-tile form keeps
// nothing in registers, so the R ≤ 64 kernels' block loop is compiled exactly as without row tiles (a tile
// kept live across it cost 9% at R = 64 on an H200, docs/PERF.md).
template <bool kTiled>
struct CtaRows;

// Row tile blockIdx.y: column c of Sᵀ (c < tiling.tile_rows()) is token token0 + c / tile_heads, head
// head0 + c % tile_heads — the order in which the Q box lands in shared memory.
template <>
struct CtaRows<true> {
  RowTile tile;
  int32_t tile_heads;
  __device__ explicit CtaRows(const KernelParams& p)
      : tile(row_tile(p.tiling, p.s_q, blockIdx.y)), tile_heads(p.tiling.tile_heads) {}
  // Request row index (s · h_q + h) of column c, or −1 for a padding column.
  __device__ int32_t row(const KernelParams& p, int32_t c) const {
    const int32_t t = c / tile_heads, h = c % tile_heads;
    if (t >= tile.tokens || h >= tile.heads) return -1;
    return (tile.token0 + t) * p.h_q + tile.head0 + h;
  }
  // Query token of column c (meaningful for columns whose row() ≥ 0).
  __device__ int32_t token(const KernelParams&, int32_t c) const { return tile.token0 + c / tile_heads; }
  __device__ int32_t first_token() const { return tile.token0; }
};

template <>
struct CtaRows<false> {
  __device__ explicit CtaRows(const KernelParams&) {}
  __device__ int32_t row(const KernelParams& p, int32_t c) const { return c < p.rows ? c : -1; }
  __device__ int32_t token(const KernelParams& p, int32_t c) const { return c / p.h_q; }
  __device__ int32_t first_token() const { return 0; }
};

}  // namespace etap::decoding
