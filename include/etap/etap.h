/* etap — MLA decode attention for Hopper GPUs (C API).
 *
 * A plain-C mirror of etap.hpp for bindings and C callers: the same two-step call (etap_plan, then
 * etap_decode), the same caller-owned buffers, the same validation. Enumerations are passed as int32_t in
 * structs so that the layout does not depend on the compiler's enum size. A cudaStream_t is passed as
 * void* (NULL: the legacy default stream), so this header needs no CUDA header.
 *
 * Errors: every function returning etap_status stores a message for its failure, readable with
 * etap_last_error() on the same thread until the next failing call there.
 */
#ifndef ETAP_ETAP_H_
#define ETAP_ETAP_H_

#include <stddef.h>
#include <stdint.h>

#include "export.h" /* quoted: this header compiles without an include path (plain C test) */

#ifdef __cplusplus
extern "C" {
#endif

typedef enum etap_status {
  ETAP_OK = 0,
  ETAP_INVALID_ARGUMENT = 1, /* a pointer, shape, stride or dtype the caller can fix */
  ETAP_UNSUPPORTED = 2,      /* a valid configuration this build does not implement yet */
  ETAP_NO_DEVICE = 3,        /* no CUDA device, or not compute capability 9.0 */
  ETAP_WORKSPACE_TOO_SMALL =
      4,                /* plan or workspace buffer smaller than etap_plan_bytes/etap_workspace_bytes */
  ETAP_CUDA_ERROR = 5,  /* a CUDA runtime call failed */
  ETAP_CHECK_FAILED = 6 /* checked mode found an out-of-range page id or seqlen on the device */
} etap_status;

typedef enum etap_dtype {
  ETAP_DTYPE_BF16 = 0,
  ETAP_DTYPE_FP16 = 1,
  ETAP_DTYPE_FP8_E4M3 = 2,
  ETAP_DTYPE_FP32 = 3
} etap_dtype;

/* etap::KvFormat: how the cache stores one token of one KV head (etap.hpp documents the layouts). */
typedef enum etap_kv_format {
  ETAP_KV_DENSE = 0,           /* d_qk values of kv_dtype = q_dtype */
  ETAP_KV_FP8_PER_TENSOR = 1,  /* d_qk e4m3 bytes, one fp32 scale for the cache (descale_k) */
  ETAP_KV_FP8_DEEPSEEK_V32 = 2 /* 656 bytes: 512 e4m3, 4 fp32 scales (one per 128 channels), 64 bf16 RoPE */
} etap_kv_format;

/* Byte offsets of the 656-byte DeepSeek-V3.2 token (etap::Fp8DeepSeekV32Token). */
#define ETAP_FP8_V32_SCALE_OFFSET 512
#define ETAP_FP8_V32_ROPE_OFFSET 528
#define ETAP_FP8_V32_TOKEN_BYTES 656

/* FlashMLA returns the natural log, FlashInfer log2: the base is part of the call, never implied. */
typedef enum etap_lse_base { ETAP_LSE_NATURAL = 0, ETAP_LSE_BASE2 = 1 } etap_lse_base;

/* Unused block-table entries may hold any value; FlashMLA's padding id, documented for callers. */
#define ETAP_PADDING_PAGE_ID 2147480000

/* The shape of one decode problem (etap::DecodeProblem). MLA: h_kv = 1, d_qk = 576, d_v = 512. */
typedef struct etap_problem {
  int32_t batch;             /* requests (padded entries use seqlen 0) */
  int32_t s_q;               /* query tokens per request */
  int32_t h_q;               /* query heads */
  int32_t h_kv;              /* latent KV heads */
  int32_t d_qk;              /* 512 latent + 64 RoPE */
  int32_t d_v;               /* V = first d_v columns of each cache row */
  int32_t page_size;         /* tokens per page */
  int32_t num_pages;         /* pages in the cache */
  int32_t max_pages_per_seq; /* block_table columns */
  int32_t q_dtype;           /* etap_dtype */
  int32_t kv_dtype;          /* etap_dtype */
  int32_t out_dtype;         /* etap_dtype, must equal q_dtype */
  int32_t kv_format;         /* etap_kv_format; FP8 formats need kv_dtype FP8_E4M3 */
  int32_t varlen_q; /* nonzero: query lengths from args.cu_seqlens_q, s_q = max_seqlen_q (etap.hpp) */
} etap_problem;

/* Pointers (device memory) and strides (in elements) of one decode call (etap::DecodeArgs). The last
 * dimension of every tensor is contiguous; etap_make_dense_args fills the strides of contiguous tensors.
 * The KV strides of an FP8 format are in bytes, multiples of 16. */
typedef struct etap_decode_args {
  etap_problem problem;
  const void* q; /* [batch, s_q, h_q, d_qk] */
  int64_t q_batch_stride, q_seq_stride, q_head_stride;
  const void* kv_cache; /* [num_pages, page_size, h_kv, d_qk] */
  int64_t kv_page_stride, kv_token_stride, kv_head_stride;
  const int32_t* block_table; /* [batch, max_pages_per_seq] page ids */
  int64_t block_table_stride;
  const int32_t* seqlens; /* [batch] tokens in the cache, the new ones included */
  void* out;              /* [batch, s_q, h_q, d_v], dtype out_dtype */
  int64_t out_batch_stride, out_seq_stride, out_head_stride;
  float* lse; /* [batch, h_q, s_q] fp32; may be NULL */
  int64_t lse_batch_stride, lse_head_stride, lse_seq_stride;
  float softmax_scale;    /* DeepSeek-V3: 1/sqrt(192) * mscale^2 ~ 0.1352, not 1/sqrt(576) */
  int32_t causal;         /* nonzero: query token i sees keys [0, seqlen - s_q + i] */
  int32_t lse_base;       /* etap_lse_base */
  const float* descale_k; /* device fp32 scalar: required by FP8_PER_TENSOR, NULL otherwise */
  const float* descale_q; /* optional device fp32 query scale (FP8 formats only), NULL otherwise */
  /* problem.varlen_q: q/out packed [total_q, h_q, d], lse [h_q, total_q] (batch strides not read); request
   * i's tokens are [cu_seqlens_q[i], cu_seqlens_q[i + 1]). Contract and checks: etap::DecodeArgs. */
  const int32_t* cu_seqlens_q; /* [batch + 1] device int32; NULL unless varlen_q */
  int32_t total_q;             /* tokens of the packed q and out; 0 unless varlen_q */
} etap_decode_args;

typedef struct etap_options {
  int32_t num_sms; /* SMs the schedule spreads over; 0 = all SMs of the current device */
  int32_t
      checked; /* nonzero: verify page ids and seqlens on the device first (synchronises; not for graphs) */
} etap_options;

/* LSE-weighted merge of partial attention states (etap::MergeArgs). */
typedef struct etap_merge_args {
  int32_t num_states;
  int32_t rows;
  int32_t dim;           /* multiple of 4 */
  const float* o_states; /* [num_states, rows, dim], each state normalised */
  int64_t o_state_stride, o_row_stride;
  const float* lse_states; /* [num_states, rows]; +-inf marks an empty state */
  int64_t lse_state_stride;
  int32_t lse_base;  /* etap_lse_base of lse_states and lse_out */
  void* out;         /* [rows, dim], dtype out_dtype */
  int32_t out_dtype; /* etap_dtype: BF16, FP16 or FP32 */
  int64_t out_row_stride;
  float* lse_out; /* [rows]; may be NULL */
} etap_merge_args;

/* Defaults of etap::DecodeProblem (MLA shape, bf16, s_q = 1, h_kv = 1) and etap::Options (all zero). */
ETAP_API etap_problem etap_default_problem(void);
ETAP_API etap_options etap_default_options(void);

/* Fills `args` with `problem`, the pointers and the strides of contiguous tensors. With `problem` NULL it
 * zeroes `args` (which etap_validate rejects) and records "problem is NULL" in etap_last_error; with `args`
 * NULL it records "args is NULL". */
ETAP_API void etap_make_dense_args(const etap_problem* problem, const void* q, const void* kv_cache,
                                   const int32_t* block_table, const int32_t* seqlens, void* out, float* lse,
                                   float softmax_scale, int32_t causal, int32_t lse_base,
                                   etap_decode_args* args);

/* etap_make_dense_args for a varlen problem (etap::make_varlen_args): contiguous packed q, out and lse. */
ETAP_API void etap_make_varlen_args(const etap_problem* problem, int32_t total_q, const int32_t* cu_seqlens_q,
                                    const void* q, const void* kv_cache, const int32_t* block_table,
                                    const int32_t* seqlens, void* out, float* lse, float softmax_scale,
                                    int32_t causal, int32_t lse_base, etap_decode_args* args);

/* Sizes of the caller-owned buffers; `options` may be NULL (defaults). 0 when the problem is invalid or
 * unsupported, or when num_sms = 0 and no device can be queried (etap_last_error says which). */
ETAP_API size_t etap_plan_bytes(const etap_problem* problem, const etap_options* options);
ETAP_API size_t etap_workspace_bytes(const etap_problem* problem, const etap_options* options);

ETAP_API etap_status etap_validate(const etap_decode_args* args);
ETAP_API etap_status etap_plan(const etap_decode_args* args, void* plan_buffer, size_t plan_buffer_bytes,
                               void* stream, const etap_options* options);
/* etap_plan from the problem and device seqlens alone, before any block table exists (etap::plan's
 * overload): num_pages is not read; max_pages_per_seq = 0 plans each request with ceil(seqlen / page_size)
 * pages, which equals etap_plan's schedule for every seqlen that fits the block table given to etap_decode.
 */
ETAP_API etap_status etap_plan_from_seqlens(const etap_problem* problem, const int32_t* seqlens,
                                            void* plan_buffer, size_t plan_buffer_bytes, void* stream,
                                            const etap_options* options);
ETAP_API etap_status etap_decode(const etap_decode_args* args, const void* plan_buffer,
                                 size_t plan_buffer_bytes, void* workspace, size_t workspace_bytes,
                                 void* stream, const etap_options* options);
ETAP_API etap_status etap_merge_states(const etap_merge_args* args, void* stream);
ETAP_API etap_status etap_check_device(int device);

/* Name of a status ("invalid argument"), never NULL. */
ETAP_API const char* etap_status_string(etap_status status);
/* Message of the last failing call on this thread ("" if none); valid until the next failing call. */
ETAP_API const char* etap_last_error(void);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* ETAP_ETAP_H_ */
