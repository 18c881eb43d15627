// etap — MLA decode attention for Hopper GPUs (C++ API).
//
// A decode call is two steps, both asynchronous on a CUDA stream and safe to capture in a CUDA graph:
//   1. plan():   computes the split-KV schedule on the GPU from device `seqlens` into a caller buffer;
//   2. decode(): runs the attention kernel (and the combine kernel when a request is split).
// The caller allocates the plan buffer and the workspace once (sizes from plan_bytes / workspace_bytes);
// neither call allocates, synchronises or reads device memory on the host (except in checked mode).
#pragma once

#include <cuda_runtime_api.h>
#include <etap/export.h>

#include <cstddef>
#include <cstdint>
#include <string>

namespace etap {

enum class DType : int32_t { kBF16 = 0, kFP16 = 1, kFP8E4M3 = 2, kFP32 = 3 };

// How the KV cache stores one token of one KV head (docs/DESIGN.md, "FP8 KV cache"). Dequantised value =
// e4m3 value · scale, exactly.
enum class KvFormat : int32_t {
  kDense = 0,           // d_qk values of kv_dtype (= q_dtype, bf16 or fp16)
  kFp8PerTensor = 1,    // d_qk e4m3 bytes; one fp32 scale for the whole cache, *DecodeArgs::descale_k (vLLM)
  kFp8DeepSeekV32 = 2,  // 656 bytes (Fp8DeepSeekV32Token): 512 e4m3, 4 fp32 scales, 64 bf16 RoPE (FlashMLA)
};

// DeepSeek-V3.2's FP8 token, FlashMLA's "FP8 with scale" layout (d_qk = 576, d_v = 512), byte offsets:
//   [0, 512)    latent channel c as e4m3, dequantised as e4m3 · scale[c / 128]
//   [512, 528)  scale[0..3], fp32 little-endian, one per 128 latent channels
//   [528, 656)  RoPE channel 512 + j as bf16 (j < 64), not quantised
// 656 = 41 · 16, so rows of tokens keep TMA's 16-byte alignment.
struct Fp8DeepSeekV32Token {
  static constexpr int32_t kLatent = 512;      // e4m3 channels
  static constexpr int32_t kScaleGroup = 128;  // latent channels per scale
  static constexpr int32_t kScales = kLatent / kScaleGroup;
  static constexpr int32_t kRope = 64;  // bf16 channels
  static constexpr int32_t kScaleOffset = kLatent;
  static constexpr int32_t kRopeOffset = kScaleOffset + kScales * 4;
  static constexpr int32_t kBytes = kRopeOffset + kRope * 2;
};
static_assert(Fp8DeepSeekV32Token::kBytes == 656 && Fp8DeepSeekV32Token::kBytes % 16 == 0);

// FlashMLA returns the natural log, FlashInfer log2: the base is part of the call, never implied.
enum class LseBase : int32_t { kNatural = 0, kBase2 = 1 };

enum class StatusCode : int32_t {
  kOk = 0,
  kInvalidArgument = 1,    // a pointer, shape, stride or dtype the caller can fix
  kUnsupported = 2,        // a valid configuration this build does not implement yet
  kNoDevice = 3,           // no CUDA device, or not compute capability 9.0
  kWorkspaceTooSmall = 4,  // plan or workspace buffer smaller than plan_bytes()/workspace_bytes()
  kCudaError = 5,          // a CUDA runtime call failed
  kCheckFailed = 6,        // checked mode found an out-of-range page id or seqlen on the device
};

class Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}
  static Status Ok() { return {}; }
  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

ETAP_API const char* to_string(StatusCode code);
ETAP_API const char* to_string(DType dtype);
ETAP_API const char* to_string(KvFormat format);
ETAP_API std::size_t dtype_bytes(DType dtype);

// Unused block-table entries may hold any value; FlashMLA's padding id, documented for callers.
inline constexpr int32_t kPaddingPageId = 2147480000;

// The shape of one decode problem: everything the schedule and workspace sizes depend on.
struct DecodeProblem {
  int32_t batch = 0;              // requests (padded entries use seqlen 0)
  int32_t s_q = 1;                // query tokens per request (MTP / speculative decode when > 1)
  int32_t h_q = 0;                // query heads
  int32_t h_kv = 1;               // latent KV heads (MLA: 1)
  int32_t d_qk = 576;             // 512 latent ‖ 64 RoPE
  int32_t d_v = 512;              // V = first d_v columns of each cache row
  int32_t page_size = 64;         // tokens per page
  int32_t num_pages = 0;          // pages in the cache
  int32_t max_pages_per_seq = 0;  // block_table columns
  DType q_dtype = DType::kBF16;
  DType kv_dtype = DType::kBF16;
  DType out_dtype = DType::kBF16;         // must equal q_dtype
  KvFormat kv_format = KvFormat::kDense;  // FP8 formats: kv_dtype kFP8E4M3, q/out bf16 or fp16
  // Variable query lengths per request (speculative verification, FlashAttention-3's cu_seqlens_q,
  // FlashInfer's qo_indptr): DecodeArgs::cu_seqlens_q gives each request's query tokens, and s_q is
  // max_seqlen_q, the host-side bound on every request's query length (it sizes the row tiles and the partial
  // results, so planning needs no device read).
  bool varlen_q = false;

  // Query rows that share one KV head: R = s_q · h_q / h_kv.
  int32_t rows() const { return h_kv > 0 ? s_q * h_q / h_kv : 0; }
};

// Pointers and strides of one decode call. Strides are in elements; the last dimension of every tensor is
// contiguous. make_dense_args() fills the strides of contiguous tensors. The KV strides of an FP8 format are
// in bytes (its element, e4m3, is one byte; a 656-byte token is 656 of them) and must be multiples of 16.
struct DecodeArgs {
  DecodeProblem problem;

  const void* q = nullptr;  // [batch, s_q, h_q, d_qk]
  int64_t q_batch_stride = 0, q_seq_stride = 0, q_head_stride = 0;

  const void* kv_cache = nullptr;  // [num_pages, page_size, h_kv, d_qk] (kFp8DeepSeekV32: 656 bytes per row)
  int64_t kv_page_stride = 0, kv_token_stride = 0, kv_head_stride = 0;

  const int32_t* block_table = nullptr;  // [batch, max_pages_per_seq] page ids
  int64_t block_table_stride = 0;

  const int32_t* seqlens = nullptr;  // [batch] tokens in the cache, the new ones included

  void* out = nullptr;  // [batch, s_q, h_q, d_v], dtype out_dtype
  int64_t out_batch_stride = 0, out_seq_stride = 0, out_head_stride = 0;

  float* lse = nullptr;  // [batch, h_q, s_q] fp32; may be null
  int64_t lse_batch_stride = 0, lse_head_stride = 0, lse_seq_stride = 0;

  float softmax_scale = 0.f;  // DeepSeek-V3: 1/sqrt(192) · mscale² ≈ 0.1352, not 1/sqrt(576)
  bool causal = false;        // MTP: query token i sees keys [0, seqlen − s_q + i]
  LseBase lse_base = LseBase::kNatural;

  // Device fp32 scalars, multiplied into the dequantised values (vLLM's k_scale/q_scale). descale_k is
  // required by kFp8PerTensor and must be null for the other formats; descale_q (optional, FP8 formats only)
  // scales the bf16/fp16 query: logits = softmax_scale · (q · descale_q) · k. Read on the device.
  const float* descale_k = nullptr;
  const float* descale_q = nullptr;

  // Variable query lengths (problem.varlen_q; both must be unset otherwise). q and out are packed,
  // [total_q, h_q, d_qk] and [total_q, h_q, d_v] (q_seq_stride/out_seq_stride step one token, the batch
  // strides are not read), lse is [h_q, total_q] (lse_head_stride, lse_seq_stride; lse_batch_stride is not
  // read). Request i's query tokens are packed tokens [cu_seqlens_q[i], cu_seqlens_q[i + 1]); causal masking
  // is bottom-right aligned per request: its token t sees keys [0, seqlen_i − q_len_i + t]. A request with
  // q_len 0 writes nothing. Device-side contract (not read on the host; checked mode verifies it and names
  // the first offending request): cu_seqlens_q[0] = 0, non-decreasing, cu_seqlens_q[batch] ≤ total_q, and
  // every q_len_i = cu_seqlens_q[i + 1] − cu_seqlens_q[i] ≤ problem.s_q (max_seqlen_q).
  const int32_t* cu_seqlens_q = nullptr;  // [batch + 1] device int32
  int32_t total_q = 0;                    // tokens (first dimension) of the packed q and out
};

ETAP_API DecodeArgs make_dense_args(const DecodeProblem& problem, const void* q, const void* kv_cache,
                                    const int32_t* block_table, const int32_t* seqlens, void* out, float* lse,
                                    float softmax_scale, bool causal, LseBase lse_base = LseBase::kNatural);

// make_dense_args for a varlen problem: contiguous packed q [total_q, h_q, d_qk], out [total_q, h_q, d_v]
// and lse [h_q, total_q].
ETAP_API DecodeArgs make_varlen_args(const DecodeProblem& problem, int32_t total_q,
                                     const int32_t* cu_seqlens_q, const void* q, const void* kv_cache,
                                     const int32_t* block_table, const int32_t* seqlens, void* out,
                                     float* lse, float softmax_scale, bool causal,
                                     LseBase lse_base = LseBase::kNatural);

struct Options {
  int num_sms = 0;  // SMs the schedule spreads over; 0 = all SMs of the current device
  // Checked mode verifies on the device that every used page id is in [0, num_pages) and every seqlen
  // fits its block-table row, and reports the first offending request. It synchronises the stream, so it
  // is not for CUDA graphs. Also enabled by the environment variable ETAP_CHECKED=1.
  bool checked = false;
};

// Sizes of the caller-owned buffers. Both depend only on the problem shape and the SM count. They return 0
// when the problem fails validation or is not supported by this build, or when options.num_sms = 0 and the
// current device's SM count cannot be queried (no device): pass num_sms explicitly to size buffers on a
// machine without a GPU.
ETAP_API std::size_t plan_bytes(const DecodeProblem& problem, const Options& options = {});
ETAP_API std::size_t workspace_bytes(const DecodeProblem& problem, const Options& options = {});

// Validates args (shapes, dtypes, strides, alignment) without touching device memory.
ETAP_API Status validate(const DecodeArgs& args);

// Step 1: split-KV schedule from device seqlens, computed on the GPU into plan_buffer.
ETAP_API Status plan(const DecodeArgs& args, void* plan_buffer, std::size_t plan_buffer_bytes,
                     cudaStream_t stream, const Options& options = {});

// Step 1 from the problem's shape and device seqlens alone, before any block table exists (FlashMLA's older
// get_mla_metadata(seqlens, rows, h_kv)). problem.num_pages is not read. problem.max_pages_per_seq = 0 plans
// every request with ceil(seqlen / page_size) pages: the plan plan(args) builds for every seqlen that fits
// the block table passed to decode() later (a longer seqlen is the caller's error; checked mode reports it).
// A positive max_pages_per_seq clamps the pages of each request as plan(args) does.
ETAP_API Status plan(const DecodeProblem& problem, const int32_t* seqlens, void* plan_buffer,
                     std::size_t plan_buffer_bytes, cudaStream_t stream, const Options& options = {});

// Step 2: attention. plan_buffer must come from plan() with the same problem and options.
ETAP_API Status decode(const DecodeArgs& args, const void* plan_buffer, std::size_t plan_buffer_bytes,
                       void* workspace, std::size_t workspace_size, cudaStream_t stream,
                       const Options& options = {});

// Merge of partial attention states (LSE-weighted), e.g. across GPUs of a context-parallel group or
// prefix/suffix (cascade) attention. An lse of ±inf marks an empty state (no keys): it gets weight 0.
// A row whose states are all empty gets out = 0 and lse = +inf.
struct MergeArgs {
  int32_t num_states = 0;
  int32_t rows = 0;
  int32_t dim = 0;                  // multiple of 4
  const float* o_states = nullptr;  // [num_states, rows, dim], each state normalised (O / l)
  int64_t o_state_stride = 0, o_row_stride = 0;
  const float* lse_states = nullptr;  // [num_states, rows]
  int64_t lse_state_stride = 0;
  LseBase lse_base = LseBase::kNatural;  // base of lse_states and lse_out
  void* out = nullptr;                   // [rows, dim], dtype out_dtype (kBF16, kFP16 or kFP32)
  DType out_dtype = DType::kFP32;
  int64_t out_row_stride = 0;
  float* lse_out = nullptr;  // [rows]; may be null
};

ETAP_API Status merge_states(const MergeArgs& args, cudaStream_t stream);

// Device capability check: "etap needs compute capability 9.0; found 8.6".
ETAP_API Status check_device(int device);

}  // namespace etap
