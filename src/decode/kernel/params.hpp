// Kernel parameters: a plain struct, one shape comment per pointer, and where a query row's results live.
#pragma once

#include <cstdint>

#include "common/host_device.hpp"

namespace etap::decoding {

struct KernelParams {
  const int32_t* plan;         // plan.hpp layout (PlanHeader + arrays)
  const int32_t* seqlens;      // [batch]
  const int32_t* block_table;  // [batch, max_pages]
  int64_t block_table_stride;
  int32_t batch, s_q, h_q, rows, max_pages;
  int32_t num_parts;    // of the plan (its layout), = gridDim.x of the decode kernel
  float scale_log2;     // softmax_scale · log2(e): logits are kept in log2 units
  float lse_out_scale;  // log2 → requested base: ln 2 (natural) or 1 (base 2)
  int32_t causal;

  void* out;  // [batch, s_q, h_q, 512]
  int64_t out_batch_stride, out_seq_stride, out_head_stride;
  float* lse;  // [batch, h_q, s_q] or null
  int64_t lse_batch_stride, lse_head_stride, lse_seq_stride;

  float* partial_o;    // [slots, rows, 512] normalised partial O of split requests
  float* partial_lse;  // [slots, rows] log2; −inf for a row that saw no key in its split
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

// Row `row` of partial slot `slot`: its index in partial_lse; partial_o holds the row at index · 512.
ETAP_HD int64_t partial_row(const KernelParams& p, int64_t slot, int32_t row) {
  return slot * p.rows + row;
}

}  // namespace etap::decoding
