// Kernel parameters: a plain struct, one shape comment per pointer, and where a query row's results live.
#pragma once

#include <cstdint>

#include "common/host_device.hpp"
#include "decode/plan/row_tiles.hpp"

namespace etap::decoding {

// How the producer moves a 64-token KV block into shared memory (kv_block_load, chosen by page size).
enum class KvLoad : int32_t {
  kWholeBlocks = 0,  // page_size % 64 == 0: one TMA box of 64 tokens per 64-column slice
  kChunks = 1,       // page_size % 8 == 0: 64 / chunk_tokens boxes per slice, one per page-aligned chunk
  kGather = 2,       // any other page size (SGLang's 1): 16-byte cp.async of each token's row
};

struct KernelParams {
  const int32_t* plan;         // plan.hpp layout (PlanHeader + arrays)
  const int32_t* seqlens;      // [batch]
  const int32_t* block_table;  // [batch, max_pages]
  int64_t block_table_stride;
  int32_t batch, s_q, h_q;  // s_q: varlen, max_seqlen_q (the bound of every request's query tokens)
  int32_t rows;  // s_q · h_q: query rows of a request (row index s · h_q + h), the rows of a partial slot
  int32_t d_v;
  int32_t max_pages, page_size;
  RowTiling tiling;     // blockIdx.y = row tile (row_tiles.hpp)
  int32_t num_parts;    // of the plan (its layout), = gridDim.x of the decode kernel
  float scale_log2;     // softmax_scale · log2(e): logits are kept in log2 units
  float lse_out_scale;  // log2 → requested base: ln 2 (natural) or 1 (base 2)
  int32_t causal;

  KvLoad kv_load;
  int32_t chunk_tokens;  // kChunks: tokens per TMA box (divides page_size and 64)
  // kGather: the cache itself, element strides (TMA reads it through kv_map otherwise).
  const void* kv_cache;  // [num_pages, page_size, h_kv, d_qk]
  int64_t kv_page_stride, kv_token_stride, kv_head_stride;

  void* out;  // [batch, s_q, h_q, d_v]
  int64_t out_batch_stride, out_seq_stride, out_head_stride;
  float* lse;  // [batch, h_q, s_q] or null
  int64_t lse_batch_stride, lse_head_stride, lse_seq_stride;

  float* partial_o;    // [slots, rows, d_v] normalised partial O of split requests
  float* partial_lse;  // [slots, rows] log2; −inf for a row that saw no key in its split

  // FP8 caches (kv_scale.cuh): device fp32 scalars, read after griddepcontrol.wait; null where unused.
  const float* descale_k;  // kFp8PerTensor: the cache's scale
  const float* descale_q;  // optional: the query's scale (vLLM's q_scale)
  // Varlen: request i's queries are packed tokens [cu_seqlens_q[i], cu_seqlens_q[i + 1]) of q, out and lse
  // (whose batch strides are then 0); null: every request has s_q tokens in its own batch slice.
  const int32_t* cu_seqlens_q;  // [batch + 1] or null
  int32_t total_q;              // varlen: tokens of the packed q and out
};

// Element offsets of query row `row` (= s · h_q + h) of `request` in out and lse.
ETAP_HD int64_t out_offset(const KernelParams& p, int32_t request, int32_t row) {
  const int32_t s = row / p.h_q, h = row % p.h_q;
  return request * p.out_batch_stride + s * p.out_seq_stride + h * p.out_head_stride;
}
ETAP_HD int64_t lse_offset(const KernelParams& p, int32_t request, int32_t row) {
  const int32_t s = row / p.h_q, h = row % p.h_q;
  return request * p.lse_batch_stride + h * p.lse_head_stride + s * p.lse_seq_stride;
}

// The query tokens of a request: its first packed token (varlen; 0 otherwise) and how many it has. Clamped
// so that offsets outside the documented contract (checked mode reports them) never address outside q, out,
// lse or a partial slot: first in [0, total_q], tokens in [0, min(s_q, total_q − first)].
struct QuerySpan {
  int32_t first, tokens;
};
ETAP_HD QuerySpan query_span(const KernelParams& p, int32_t request) {
  if (p.cu_seqlens_q == nullptr) return {0, p.s_q};
  const int32_t begin = p.cu_seqlens_q[request], end = p.cu_seqlens_q[request + 1];
  const int32_t first = begin < 0 ? 0 : (begin > p.total_q ? p.total_q : begin);
  int32_t tokens = end - first;
  if (tokens > p.s_q) tokens = p.s_q;
  if (tokens > p.total_q - first) tokens = p.total_q - first;
  return {first, tokens < 0 ? 0 : tokens};
}

// Row `row` of partial slot `slot`: its index in partial_lse; partial_o holds the row at index · d_v.
ETAP_HD int64_t partial_row(const KernelParams& p, int64_t slot, int32_t row) {
  return slot * p.rows + row;
}

}  // namespace etap::decoding
