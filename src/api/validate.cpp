// Argument validation at the API boundary: every message names the argument, the value found and what the
// caller can do about it. Nothing here touches device memory.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>

#include "api/api_internal.hpp"
#include "common/constants.hpp"

namespace etap {
namespace {

using api::str;

// (d_qk, d_v) pairs the kernels are built for: DeepSeek-V2/V3/R1 and Kimi-K2 (576/512), the latent part alone
// without RoPE (512/512, as FlashMLA accepts), kv_lora_rank-256 models (320/256).
struct HeadDims {
  int32_t d_qk, d_v;
};
constexpr HeadDims kSupportedHeadDims[] = {{mla::kDqk, mla::kDv}, {512, 512}, {320, 256}};
// All query rows of one request (s_q·h_q): the partial results of a split request hold this many rows. The
// conformance sweep tests up to 2048 (h_q = 128 × s_q = 16).
constexpr int64_t kMaxRequestRows = 4096;
// Varlen: a packed row's index (token · h_q + head) is a 32-bit value in the kernels.
constexpr int64_t kMaxPackedRows = std::numeric_limits<int32_t>::max();
constexpr std::uintptr_t kTmaAlignment = 16;
constexpr std::uintptr_t kInt32Alignment = 4;
constexpr int64_t kTmaRowAlignmentBytes = 16;
constexpr int64_t kMaxStrideBytes = int64_t{1} << 40;  // cuTensorMapEncodeTiled's limit on global strides
// The schedule places every request on a 32-bit cost line: pages plus a fixed cost of at most this much.
constexpr int64_t kMaxCostPerRequestOverhead = 64;
constexpr int64_t kCostLineLimit = int64_t{1} << 31;
static_assert(decoding::kFixedCost <= kMaxCostPerRequestOverhead &&
                  decoding::kRowsFixedCost <= kMaxCostPerRequestOverhead,
              "the cost-line bound assumes a small F");
constexpr const char* kStrideHint = "strides are in elements; etap::make_dense_args fills dense strides";
constexpr const char* kFp8StrideHint =
    "the KV strides of an FP8 format are in bytes; etap::make_dense_args fills dense strides";

// KV blocks (the schedule's unit, 64 tokens) of the longest request the block table allows.
int64_t max_blocks(const DecodeProblem& p) {
  return (int64_t{p.max_pages_per_seq} * p.page_size + decoding::kBlockTokens - 1) / decoding::kBlockTokens;
}

Status invalid(std::string message) {
  return {StatusCode::kInvalidArgument, std::move(message)};
}
Status unsupported(std::string message) {
  return {StatusCode::kUnsupported, std::move(message)};
}

bool is_known(DType dtype) {
  const auto value = static_cast<int32_t>(dtype);
  return value >= static_cast<int32_t>(DType::kBF16) && value <= static_cast<int32_t>(DType::kFP32);
}

std::string dtype_name(DType dtype) {
  return is_known(dtype) ? std::string(to_string(dtype))
                         : str("unknown dtype value ", static_cast<int32_t>(dtype));
}

Status check_positive(const char* name, int64_t value, const char* what) {
  if (value >= 1) return Status::Ok();
  return invalid(str(name, " must be at least 1; got ", value, " (", what, ")"));
}

bool is_known(KvFormat format) {
  const auto value = static_cast<int32_t>(format);
  return value >= static_cast<int32_t>(KvFormat::kDense) &&
         value <= static_cast<int32_t>(KvFormat::kFp8DeepSeekV32);
}

Status check_dtypes(const DecodeProblem& p) {
  for (const auto& [name, dtype] : {std::pair{"q_dtype", p.q_dtype}, std::pair{"kv_dtype", p.kv_dtype},
                                    std::pair{"out_dtype", p.out_dtype}}) {
    if (!is_known(dtype))
      return invalid(str(name, " has the unknown value ", static_cast<int32_t>(dtype),
                         "; use an etap::DType enumerator"));
  }
  if (!is_known(p.kv_format))
    return invalid(str("kv_format has the unknown value ", static_cast<int32_t>(p.kv_format),
                       "; use an etap::KvFormat enumerator"));
  if (p.q_dtype != DType::kBF16 && p.q_dtype != DType::kFP16)
    return unsupported(str("q_dtype ", dtype_name(p.q_dtype), " is not supported; supported: bf16, fp16"));
  if (p.kv_format == KvFormat::kDense) {
    if (p.kv_dtype == DType::kFP8E4M3)
      return invalid(
          "kv_dtype fp8_e4m3 needs an FP8 kv_format: kFp8PerTensor (one fp32 scale, descale_k) or "
          "kFp8DeepSeekV32 (656-byte tokens with their own scales); the dense format holds q's dtype");
    if (p.kv_dtype != p.q_dtype)
      return invalid(
          str("kv_dtype (", dtype_name(p.kv_dtype), ") must equal q_dtype (", dtype_name(p.q_dtype), ")"));
  } else if (p.kv_dtype != DType::kFP8E4M3) {
    return invalid(str("kv_format ", to_string(p.kv_format),
                       " stores e4m3 values; set kv_dtype to fp8_e4m3 (got ", dtype_name(p.kv_dtype), ")"));
  }
  if (p.out_dtype != p.q_dtype)
    return invalid(
        str("out_dtype (", dtype_name(p.out_dtype), ") must equal q_dtype (", dtype_name(p.q_dtype), ")"));
  return Status::Ok();
}

// The scale pointers: descale_k exactly when the format keeps its scale outside the cache.
Status check_scales(const DecodeArgs& args) {
  const KvFormat format = args.problem.kv_format;
  if (format == KvFormat::kFp8PerTensor) {
    if (args.descale_k == nullptr)
      return invalid(
          "descale_k is null; kv_format fp8_per_tensor needs the device address of the cache's fp32 scale "
          "(vLLM's k_scale): dequantised value = e4m3 value · *descale_k");
    if (reinterpret_cast<std::uintptr_t>(args.descale_k) % kInt32Alignment != 0)
      return invalid(
          str("descale_k must be 4-byte aligned (fp32); got address ", api::hex_address(args.descale_k)));
  } else if (args.descale_k != nullptr) {
    return invalid(str("descale_k must be null for kv_format ", to_string(format),
                       format == KvFormat::kDense ? ": a dense cache is not quantised"
                                                  : ": its scales are stored in each 656-byte token"));
  }
  if (args.descale_q != nullptr) {
    if (format == KvFormat::kDense)
      return invalid(str("descale_q must be null for kv_format dense: it is the query scale of an FP8 call (",
                         "vLLM's q_scale), folded into the logits of the FP8 kernels"));
    if (reinterpret_cast<std::uintptr_t>(args.descale_q) % kInt32Alignment != 0)
      return invalid(
          str("descale_q must be 4-byte aligned (fp32); got address ", api::hex_address(args.descale_q)));
  }
  return Status::Ok();
}

Status check_null(const char* name, const void* pointer, const char* tensor) {
  if (pointer != nullptr) return Status::Ok();
  return invalid(str(name, " is null; pass the device address of ", tensor));
}

Status check_alignment(const char* name, const void* pointer, std::uintptr_t alignment, const char* why) {
  if (reinterpret_cast<std::uintptr_t>(pointer) % alignment == 0) return Status::Ok();
  return invalid(
      str(name, " must be ", alignment, "-byte aligned ", why, "; got address ", api::hex_address(pointer)));
}

// One outer dimension of a strided tensor: its stride (elements) and extent.
struct Dim {
  const char* stride_name;
  int64_t stride;
  int64_t extent;
};

// Strides must be positive, below the TMA limit, keep 16-bit rows 16-byte aligned, and never map two
// elements to one address (each dimension steps past the span of the dimensions inside it). `dims` are
// listed outer to inner, the contiguous last dimension (inner_extent) excluded.
Status check_strides(std::array<Dim, 3> dims, int64_t inner_extent, int64_t element_bytes, bool rows_feed_tma,
                     const char* hint = kStrideHint) {
  const int64_t row_multiple = kTmaRowAlignmentBytes / element_bytes;
  for (const Dim& d : dims) {
    if (d.stride < 1)
      return invalid(str(d.stride_name, " must be positive; got ", d.stride, " (", hint, ")"));
    if (d.stride >= kMaxStrideBytes / element_bytes)
      return invalid(
          str(d.stride_name, " = ", d.stride, " elements is too large; strides must stay below 2^40 bytes"));
    if (rows_feed_tma && d.stride % row_multiple != 0)
      return invalid(str(d.stride_name, " = ", d.stride, " is not a multiple of ", row_multiple,
                         " elements (16 bytes): TMA needs every row 16-byte aligned"));
  }
  // Innermost first; on equal strides the dimension declared outer is blamed for the overlap.
  std::reverse(dims.begin(), dims.end());
  std::stable_sort(dims.begin(), dims.end(), [](const Dim& a, const Dim& b) { return a.stride < b.stride; });
  int64_t span = inner_extent;  // elements covered by the dimensions inside the current one
  for (const Dim& d : dims) {
    if (d.extent <= 1) continue;  // a single index never overlaps anything
    if (d.stride < span)
      return invalid(str(d.stride_name, " = ", d.stride, " is smaller than ", span,
                         " elements, the span of the dimensions inside it, so rows would overlap (", hint,
                         ")"));
    const int64_t step = d.extent - 1;
    span = step > (std::numeric_limits<int64_t>::max() - span) / d.stride
               ? std::numeric_limits<int64_t>::max()
               : d.stride * step + span;
  }
  return Status::Ok();
}

// Packed variable-length queries: the offsets pointer, total_q and the strides of the packed q, out and lse
// (the batch strides are not read; a dimension of extent 1 stands in for them).
Status check_varlen(const DecodeArgs& args) {
  const DecodeProblem& p = args.problem;
  ETAP_RETURN_IF_ERROR(check_null("cu_seqlens_q", args.cu_seqlens_q,
                                  "the int32 query offsets [batch + 1] (problem.varlen_q is set)"));
  ETAP_RETURN_IF_ERROR(check_alignment("cu_seqlens_q", args.cu_seqlens_q, kInt32Alignment, "(int32)"));
  if (args.total_q < 1)
    return invalid(str("total_q must be at least 1 with varlen_q; got ", args.total_q,
                       " (the tokens of the packed q; pad it to one token when every request has none)"));
  if (int64_t{args.total_q} * p.h_q > kMaxPackedRows)
    return unsupported(str("total_q · h_q = ", int64_t{args.total_q} * p.h_q,
                           " packed query rows; this build supports up to ", kMaxPackedRows,
                           " (split the batch over several calls)"));
  const int64_t element = static_cast<int64_t>(dtype_bytes(p.q_dtype));
  if (args.q_seq_stride >= 1 && args.q_seq_stride > kMaxStrideBytes / element / args.total_q)
    return invalid(str("q_seq_stride · total_q = ", args.q_seq_stride, " · ", args.total_q,
                       " elements is too large: the packed q must span less than 2^40 bytes (TMA)"));
  ETAP_RETURN_IF_ERROR(check_strides(
      {Dim{"q_seq_stride", args.q_seq_stride, args.total_q}, Dim{"q_seq_stride", args.q_seq_stride, 1},
       Dim{"q_head_stride", args.q_head_stride, p.h_q}},
      p.d_qk, element, true));
  ETAP_RETURN_IF_ERROR(check_strides(
      {Dim{"out_seq_stride", args.out_seq_stride, args.total_q},
       Dim{"out_seq_stride", args.out_seq_stride, 1}, Dim{"out_head_stride", args.out_head_stride, p.h_q}},
      p.d_v, static_cast<int64_t>(dtype_bytes(p.out_dtype)), true));
  if (args.lse != nullptr)
    ETAP_RETURN_IF_ERROR(check_strides(
        {Dim{"lse_head_stride", args.lse_head_stride, p.h_q}, Dim{"lse_head_stride", args.lse_head_stride, 1},
         Dim{"lse_seq_stride", args.lse_seq_stride, args.total_q}},
        1, sizeof(float), false));
  return Status::Ok();
}

}  // namespace

namespace api {

Status check_problem(const DecodeProblem& p) {
  ETAP_RETURN_IF_ERROR(check_positive("batch", p.batch, "pad unused batch entries with seqlen 0"));
  ETAP_RETURN_IF_ERROR(check_positive("s_q", p.s_q, "query tokens per request"));
  ETAP_RETURN_IF_ERROR(check_positive("h_q", p.h_q, "query heads"));
  ETAP_RETURN_IF_ERROR(check_positive("h_kv", p.h_kv, "KV heads; MLA uses 1"));
  if (p.h_q % p.h_kv != 0) return invalid(str("h_q (", p.h_q, ") must be divisible by h_kv (", p.h_kv, ")"));
  ETAP_RETURN_IF_ERROR(check_positive("d_qk", p.d_qk, "query/key head dim; MLA uses 576"));
  ETAP_RETURN_IF_ERROR(check_positive("d_v", p.d_v, "value head dim; MLA uses 512"));
  if (p.d_v > p.d_qk)
    return invalid(str("d_v (", p.d_v, ") must not exceed d_qk (", p.d_qk,
                       "): V is the first d_v columns of each cache row"));
  ETAP_RETURN_IF_ERROR(check_positive("page_size", p.page_size, "tokens per cache page"));
  ETAP_RETURN_IF_ERROR(check_positive("num_pages", p.num_pages, "pages in the KV cache"));
  ETAP_RETURN_IF_ERROR(check_positive("max_pages_per_seq", p.max_pages_per_seq, "block_table columns"));
  ETAP_RETURN_IF_ERROR(check_dtypes(p));
  if (p.kv_format == KvFormat::kFp8DeepSeekV32 && (p.d_qk != mla::kDqk || p.d_v != mla::kDv))
    return invalid(str("kv_format fp8_deepseek_v32 fixes d_qk = ", mla::kDqk, " and d_v = ", mla::kDv,
                       " (512 e4m3 latent + 64 bf16 RoPE channels per 656-byte token); got d_qk = ", p.d_qk,
                       ", d_v = ", p.d_v));

  if (std::none_of(std::begin(kSupportedHeadDims), std::end(kSupportedHeadDims),
                   [&](HeadDims d) { return d.d_qk == p.d_qk && d.d_v == p.d_v; }))
    return unsupported(str("head dims d_qk=", p.d_qk, "/d_v=", p.d_v,
                           " are not supported; supported: 576/512, 512/512 and 320/256"));
  const int64_t request_rows = int64_t{p.s_q} * p.h_q;
  if (request_rows > kMaxRequestRows)
    return unsupported(str("s_q·h_q = ", request_rows, " query rows per request; this build supports up to ",
                           kMaxRequestRows, " (split the batch's query tokens over several calls)"));
  const int64_t cost_line = int64_t{p.batch} * (max_blocks(p) + kMaxCostPerRequestOverhead);
  if (cost_line >= kCostLineLimit)
    return unsupported(str("batch · (ceil(max_pages_per_seq · page_size / ", decoding::kBlockTokens, ") + ",
                           kMaxCostPerRequestOverhead, ") = ", cost_line,
                           " must stay below 2^31 (the schedule uses 32-bit positions); split the batch into "
                           "smaller calls"));
  return Status::Ok();
}

Status check_kernel_built(const DecodeProblem& p) {
  if (p.kv_format == KvFormat::kDense) return Status::Ok();
  if (p.d_qk != mla::kDqk || p.d_v != mla::kDv)
    return unsupported(str("kv_format ", to_string(p.kv_format), " is built for d_qk = ", mla::kDqk,
                           " and d_v = ", mla::kDv, " only; got d_qk = ", p.d_qk, ", d_v = ", p.d_v,
                           " (use a dense bf16 or fp16 cache for the other head dims)"));
  if (p.kv_format == KvFormat::kFp8DeepSeekV32 && p.q_dtype != DType::kBF16)
    return unsupported(
        str("kv_format fp8_deepseek_v32 takes bf16 queries only (its RoPE channels are bf16); "
            "got q_dtype ",
            dtype_name(p.q_dtype)));
  return Status::Ok();
}

int32_t largest_max_pages_per_seq(int32_t batch, int32_t page_size) {
  if (batch < 1 || page_size < 1) return 1;
  const int64_t blocks = (kCostLineLimit - 1) / batch - kMaxCostPerRequestOverhead;
  const int64_t largest = blocks * decoding::kBlockTokens / page_size;
  return static_cast<int32_t>(std::clamp<int64_t>(largest, 1, std::numeric_limits<int32_t>::max()));
}

}  // namespace api

Status validate(const DecodeArgs& args) {
  const DecodeProblem& p = args.problem;
  ETAP_RETURN_IF_ERROR(api::check_problem(p));

  ETAP_RETURN_IF_ERROR(check_null("q", args.q,
                                  p.varlen_q ? "the packed query tensor [total_q, h_q, d_qk]"
                                             : "the query tensor [batch, s_q, h_q, d_qk]"));
  ETAP_RETURN_IF_ERROR(
      check_null("kv_cache", args.kv_cache, "the KV cache [num_pages, page_size, h_kv, d_qk]"));
  ETAP_RETURN_IF_ERROR(
      check_null("block_table", args.block_table, "the int32 block table [batch, max_pages_per_seq]"));
  ETAP_RETURN_IF_ERROR(check_null("seqlens", args.seqlens, "the int32 sequence lengths [batch]"));
  ETAP_RETURN_IF_ERROR(check_null("out", args.out, "the output tensor [batch, s_q, h_q, d_v]"));

  ETAP_RETURN_IF_ERROR(check_alignment("q", args.q, kTmaAlignment, "for TMA"));
  ETAP_RETURN_IF_ERROR(check_alignment("kv_cache", args.kv_cache, kTmaAlignment, "for TMA"));
  ETAP_RETURN_IF_ERROR(check_alignment("out", args.out, kTmaAlignment, "for vectorised stores"));
  ETAP_RETURN_IF_ERROR(check_alignment("block_table", args.block_table, kInt32Alignment, "(int32)"));
  ETAP_RETURN_IF_ERROR(check_alignment("seqlens", args.seqlens, kInt32Alignment, "(int32)"));
  if (args.lse != nullptr) ETAP_RETURN_IF_ERROR(check_alignment("lse", args.lse, kInt32Alignment, "(fp32)"));
  ETAP_RETURN_IF_ERROR(check_scales(args));

  const int64_t element = static_cast<int64_t>(dtype_bytes(p.q_dtype));
  if (p.varlen_q) {
    ETAP_RETURN_IF_ERROR(check_varlen(args));
  } else {
    if (args.cu_seqlens_q != nullptr || args.total_q != 0)
      return invalid(str("cu_seqlens_q/total_q are set (total_q = ", args.total_q,
                         ") but problem.varlen_q is false; set varlen_q for packed variable-length queries"));
    ETAP_RETURN_IF_ERROR(check_strides(
        {Dim{"q_batch_stride", args.q_batch_stride, p.batch}, Dim{"q_seq_stride", args.q_seq_stride, p.s_q},
         Dim{"q_head_stride", args.q_head_stride, p.h_q}},
        p.d_qk, element, true));
  }
  // FP8 formats: byte strides, every row 16-byte aligned (656 = 41 · 16).
  const bool fp8 = p.kv_format != KvFormat::kDense;
  ETAP_RETURN_IF_ERROR(check_strides({Dim{"kv_page_stride", args.kv_page_stride, p.num_pages},
                                      Dim{"kv_token_stride", args.kv_token_stride, p.page_size},
                                      Dim{"kv_head_stride", args.kv_head_stride, p.h_kv}},
                                     api::kv_row_elements(p), static_cast<int64_t>(dtype_bytes(p.kv_dtype)),
                                     true, fp8 ? kFp8StrideHint : kStrideHint));
  if (!p.varlen_q) {
    ETAP_RETURN_IF_ERROR(check_strides({Dim{"out_batch_stride", args.out_batch_stride, p.batch},
                                        Dim{"out_seq_stride", args.out_seq_stride, p.s_q},
                                        Dim{"out_head_stride", args.out_head_stride, p.h_q}},
                                       p.d_v, static_cast<int64_t>(dtype_bytes(p.out_dtype)), true));
    if (args.lse != nullptr)
      ETAP_RETURN_IF_ERROR(check_strides({Dim{"lse_batch_stride", args.lse_batch_stride, p.batch},
                                          Dim{"lse_head_stride", args.lse_head_stride, p.h_q},
                                          Dim{"lse_seq_stride", args.lse_seq_stride, p.s_q}},
                                         1, sizeof(float), false));
  }
  if (args.block_table_stride < p.max_pages_per_seq)
    return invalid(str("block_table_stride (", args.block_table_stride,
                       ") must be at least max_pages_per_seq (", p.max_pages_per_seq, ")"));

  if (!std::isfinite(args.softmax_scale) || args.softmax_scale <= 0.f)
    return invalid(str("softmax_scale must be a finite positive number; got ", args.softmax_scale,
                       " (DeepSeek-V3 uses 1/sqrt(192) · mscale² ≈ 0.1352)"));
  if (args.lse_base != LseBase::kNatural && args.lse_base != LseBase::kBase2)
    return invalid(str("lse_base has the unknown value ", static_cast<int32_t>(args.lse_base),
                       "; use LseBase::kNatural or LseBase::kBase2"));
  return api::check_kernel_built(p);
}

}  // namespace etap
