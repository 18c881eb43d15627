// Row tiles: how the query rows of one request are split over CTAs (the decode grid's y dimension).
//
// A CTA computes at most kMaxTileRows = 64 query rows (the wgmma N of its two consumer warpgroups together),
// all of one KV head. The rows of KV head g are its h_q / h_kv heads × s_q tokens; a tile is a rectangle of
// `heads` consecutive heads × `tokens` consecutive tokens, so that one TMA box loads its Q and its rows map
// back to (token, head) by a division. When a KV head has at most 64 heads, a tile holds all of them and as
// many tokens as fit; otherwise one token and a balanced share of the heads. Every tile of a request streams
// the same KV pages (the same plan), at the same time on different SMs, so the second read of a page is
// likely to hit L2.
#pragma once

#include <cstdint>

#include "common/host_device.hpp"

namespace etap::decoding {

inline constexpr int32_t kMaxTileRows = 64;

struct RowTiling {
  int32_t heads_per_kv;  // h_q / h_kv
  int32_t tile_heads;    // heads of a tile (the last head chunk may have fewer valid ones)
  int32_t tile_tokens;   // query tokens of a tile (the last token block may have fewer valid ones)
  int32_t head_chunks;   // tiles across the heads of one KV head
  int32_t token_blocks;  // tiles across s_q
  int32_t num_tiles;     // h_kv · token_blocks · head_chunks
  ETAP_HD int32_t tile_rows() const { return tile_heads * tile_tokens; }
};

ETAP_HD int32_t ceil_div(int32_t a, int32_t b) {
  return (a + b - 1) / b;
}

// s_q ≥ 1, h_q ≥ 1, h_kv ≥ 1 dividing h_q (validated by the API).
ETAP_HD RowTiling row_tiling(int32_t s_q, int32_t h_q, int32_t h_kv) {
  RowTiling t{};
  t.heads_per_kv = h_q / h_kv;
  if (t.heads_per_kv <= kMaxTileRows) {
    t.head_chunks = 1;
    t.tile_heads = t.heads_per_kv;
    const int32_t most_tokens = kMaxTileRows / t.heads_per_kv;
    t.token_blocks = ceil_div(s_q, most_tokens);
    t.tile_tokens = ceil_div(s_q, t.token_blocks);  // balanced: the tiles' N stays as small as it can
  } else {
    t.head_chunks = ceil_div(t.heads_per_kv, kMaxTileRows);
    t.tile_heads = ceil_div(t.heads_per_kv, t.head_chunks);
    t.tile_tokens = 1;
    t.token_blocks = s_q;
  }
  t.num_tiles = h_kv * t.token_blocks * t.head_chunks;
  return t;
}

// Tile `index` of a request: its KV head, first token, first head (absolute, in [0, h_q)) and how many of
// its tokens and heads exist.
struct RowTile {
  int32_t kv_head, token0, head0, tokens, heads;
};

ETAP_HD RowTile row_tile(const RowTiling& t, int32_t s_q, int32_t index) {
  const int32_t per_kv = t.token_blocks * t.head_chunks;
  const int32_t kv_head = index / per_kv, rest = index % per_kv;
  const int32_t block = rest / t.head_chunks, chunk = rest % t.head_chunks;
  const int32_t token0 = block * t.tile_tokens, local_head0 = chunk * t.tile_heads;
  const int32_t tokens = s_q - token0 < t.tile_tokens ? s_q - token0 : t.tile_tokens;
  const int32_t heads =
      t.heads_per_kv - local_head0 < t.tile_heads ? t.heads_per_kv - local_head0 : t.tile_heads;
  return {kv_head, token0, kv_head * t.heads_per_kv + local_head0, tokens, heads};
}

}  // namespace etap::decoding
