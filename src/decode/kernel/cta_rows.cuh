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
// head0 + c % tile_heads — the order in which the Q box lands in shared memory. The tiles are those of s_q
// tokens (varlen: max_seqlen_q); enter() narrows them to the current request's query tokens.
template <>
struct CtaRows<true> {
  RowTile tile;  // varlen: tile.tokens counts the current request's tokens of the tile (enter())
  int32_t tile_heads;
  QuerySpan span;  // the current request's query tokens (query_span)
  __device__ explicit CtaRows(const KernelParams& p)
      : tile(row_tile(p.tiling, p.s_q, blockIdx.y)), tile_heads(p.tiling.tile_heads), span{0, p.s_q} {}
  // Starts a segment of `request`: false when the tile holds none of its query tokens (varlen), and the
  // CTA skips the segment. The producer and the consumers call it alike, so they skip the same segments
  // and their mbarrier phases stay in step. Only span.first stays live through the block loop.
  __device__ bool enter(const KernelParams& p, int32_t request) {
    if (p.cu_seqlens_q == nullptr) return true;
    span = query_span(p, request);
    tile.tokens = min(span.tokens - tile.token0, p.tiling.tile_tokens);
    return tile.tokens > 0;
  }
  // Request row index (s · h_q + h) of column c, or −1 for a padding column.
  __device__ int32_t row(const KernelParams& p, int32_t c) const {
    const int32_t t = c / tile_heads, h = c % tile_heads;
    if (t >= tile.tokens || h >= tile.heads) return -1;
    return (tile.token0 + t) * p.h_q + tile.head0 + h;
  }
  // Query token of column c (meaningful for columns whose row() ≥ 0).
  __device__ int32_t token(const KernelParams&, int32_t c) const { return tile.token0 + c / tile_heads; }
  __device__ int32_t first_token() const { return tile.token0; }
  // Query tokens of the current request (causal alignment).
  __device__ int32_t query_tokens(const KernelParams&) const { return span.tokens; }
  // Row index in out/lse (out_offset): varlen rows count from the request's first packed token.
  __device__ int32_t out_row(const KernelParams& p, int32_t row) const { return span.first * p.h_q + row; }
  // Token and request coordinates of the Q box (varlen: packed tokens, one "request" of total_q tokens).
  __device__ int32_t q_box_token() const { return span.first + tile.token0; }
  __device__ int32_t q_box_request(const KernelParams& p, int32_t request) const {
    return p.cu_seqlens_q == nullptr ? request : 0;
  }
};

// Varlen problems always use the tiled kernels (the launcher's choice), so nothing here reads cu_seqlens_q.
template <>
struct CtaRows<false> {
  __device__ explicit CtaRows(const KernelParams&) {}
  __device__ bool enter(const KernelParams&, int32_t) const { return true; }
  __device__ int32_t row(const KernelParams& p, int32_t c) const { return c < p.rows ? c : -1; }
  __device__ int32_t token(const KernelParams& p, int32_t c) const { return c / p.h_q; }
  __device__ int32_t first_token() const { return 0; }
  __device__ int32_t query_tokens(const KernelParams& p) const { return p.s_q; }
  __device__ int32_t out_row(const KernelParams&, int32_t row) const { return row; }
  __device__ int32_t q_box_token() const { return 0; }
  __device__ int32_t q_box_request(const KernelParams&, int32_t request) const { return request; }
};

}  // namespace etap::decoding
