// Kernel parameters: a plain struct, one shape comment per pointer.
#pragma once

#include <cstdint>

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

}  // namespace etap::decoding
