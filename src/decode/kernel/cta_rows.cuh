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

template <>
struct CtaRows<true> {
  TileRows tiles;
  __device__ explicit CtaRows(const KernelParams& p) : tiles(tile_rows(p, blockIdx.y)) {}
  __device__ int32_t row(const KernelParams& p, int32_t c) const { return tiles.row(p, c); }
  __device__ int32_t token(const KernelParams&, int32_t c) const { return tiles.token(c); }
  __device__ int32_t first_token() const { return tiles.tile.token0; }
};

template <>
struct CtaRows<false> {
  __device__ explicit CtaRows(const KernelParams&) {}
  __device__ int32_t row(const KernelParams& p, int32_t c) const { return c < p.rows ? c : -1; }
  __device__ int32_t token(const KernelParams& p, int32_t c) const { return c / p.h_q; }
  __device__ int32_t first_token() const { return 0; }
};

}  // namespace etap::decoding
