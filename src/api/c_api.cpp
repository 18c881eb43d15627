// The C ABI (include/etap/etap.h): converts the plain-C structs, calls the C++ API, keeps the last failure
// message per thread. No exception crosses the boundary.
#include <cuda_runtime_api.h>
#include <etap/etap.h>

#include <exception>
#include <string>

#include "api/api_internal.hpp"

namespace {

using namespace etap;

static_assert(ETAP_OK == static_cast<int>(StatusCode::kOk));
static_assert(ETAP_INVALID_ARGUMENT == static_cast<int>(StatusCode::kInvalidArgument));
static_assert(ETAP_UNSUPPORTED == static_cast<int>(StatusCode::kUnsupported));
static_assert(ETAP_NO_DEVICE == static_cast<int>(StatusCode::kNoDevice));
static_assert(ETAP_WORKSPACE_TOO_SMALL == static_cast<int>(StatusCode::kWorkspaceTooSmall));
static_assert(ETAP_CUDA_ERROR == static_cast<int>(StatusCode::kCudaError));
static_assert(ETAP_CHECK_FAILED == static_cast<int>(StatusCode::kCheckFailed));
static_assert(ETAP_DTYPE_BF16 == static_cast<int>(DType::kBF16));
static_assert(ETAP_DTYPE_FP16 == static_cast<int>(DType::kFP16));
static_assert(ETAP_DTYPE_FP8_E4M3 == static_cast<int>(DType::kFP8E4M3));
static_assert(ETAP_DTYPE_FP32 == static_cast<int>(DType::kFP32));
static_assert(ETAP_LSE_NATURAL == static_cast<int>(LseBase::kNatural));
static_assert(ETAP_LSE_BASE2 == static_cast<int>(LseBase::kBase2));
static_assert(ETAP_PADDING_PAGE_ID == kPaddingPageId);
static_assert(ETAP_KV_DENSE == static_cast<int>(KvFormat::kDense));
static_assert(ETAP_KV_FP8_PER_TENSOR == static_cast<int>(KvFormat::kFp8PerTensor));
static_assert(ETAP_KV_FP8_DEEPSEEK_V32 == static_cast<int>(KvFormat::kFp8DeepSeekV32));
static_assert(ETAP_FP8_V32_SCALE_OFFSET == Fp8DeepSeekV32Token::kScaleOffset);
static_assert(ETAP_FP8_V32_ROPE_OFFSET == Fp8DeepSeekV32Token::kRopeOffset);
static_assert(ETAP_FP8_V32_TOKEN_BYTES == Fp8DeepSeekV32Token::kBytes);

thread_local std::string last_error;

etap_status record(const Status& status) {
  if (!status.ok()) last_error = status.message();
  return static_cast<etap_status>(status.code());
}

etap_status null_argument(const char* name) {
  return record({StatusCode::kInvalidArgument, api::str(name, " is NULL")});
}

// Runs `body` (returning Status), turning an escaping exception (out of memory) into a status.
template <typename Body>
etap_status guarded(Body&& body) {
  try {
    return record(body());
  } catch (const std::exception& e) {
    last_error = e.what();
  } catch (...) {
    last_error = "unknown exception";
  }
  return ETAP_INVALID_ARGUMENT;
}

DecodeProblem to_cpp(const etap_problem& c) {
  DecodeProblem p;
  p.batch = c.batch;
  p.s_q = c.s_q;
  p.h_q = c.h_q;
  p.h_kv = c.h_kv;
  p.d_qk = c.d_qk;
  p.d_v = c.d_v;
  p.page_size = c.page_size;
  p.num_pages = c.num_pages;
  p.max_pages_per_seq = c.max_pages_per_seq;
  p.q_dtype = static_cast<DType>(c.q_dtype);
  p.kv_dtype = static_cast<DType>(c.kv_dtype);
  p.out_dtype = static_cast<DType>(c.out_dtype);
  p.kv_format = static_cast<KvFormat>(c.kv_format);
  p.varlen_q = c.varlen_q != 0;
  return p;
}

etap_problem to_c(const DecodeProblem& p) {
  return {p.batch,
          p.s_q,
          p.h_q,
          p.h_kv,
          p.d_qk,
          p.d_v,
          p.page_size,
          p.num_pages,
          p.max_pages_per_seq,
          static_cast<int32_t>(p.q_dtype),
          static_cast<int32_t>(p.kv_dtype),
          static_cast<int32_t>(p.out_dtype),
          static_cast<int32_t>(p.kv_format),
          p.varlen_q ? 1 : 0};
}

DecodeArgs to_cpp(const etap_decode_args& c) {
  DecodeArgs a;
  a.problem = to_cpp(c.problem);
  a.q = c.q;
  a.q_batch_stride = c.q_batch_stride;
  a.q_seq_stride = c.q_seq_stride;
  a.q_head_stride = c.q_head_stride;
  a.kv_cache = c.kv_cache;
  a.kv_page_stride = c.kv_page_stride;
  a.kv_token_stride = c.kv_token_stride;
  a.kv_head_stride = c.kv_head_stride;
  a.block_table = c.block_table;
  a.block_table_stride = c.block_table_stride;
  a.seqlens = c.seqlens;
  a.out = c.out;
  a.out_batch_stride = c.out_batch_stride;
  a.out_seq_stride = c.out_seq_stride;
  a.out_head_stride = c.out_head_stride;
  a.lse = c.lse;
  a.lse_batch_stride = c.lse_batch_stride;
  a.lse_head_stride = c.lse_head_stride;
  a.lse_seq_stride = c.lse_seq_stride;
  a.softmax_scale = c.softmax_scale;
  a.causal = c.causal != 0;
  a.lse_base = static_cast<LseBase>(c.lse_base);
  a.descale_k = c.descale_k;
  a.descale_q = c.descale_q;
  a.cu_seqlens_q = c.cu_seqlens_q;
  a.total_q = c.total_q;
  return a;
}

etap_decode_args to_c(const DecodeArgs& a) {
  etap_decode_args c{};
  c.problem = to_c(a.problem);
  c.q = a.q;
  c.q_batch_stride = a.q_batch_stride;
  c.q_seq_stride = a.q_seq_stride;
  c.q_head_stride = a.q_head_stride;
  c.kv_cache = a.kv_cache;
  c.kv_page_stride = a.kv_page_stride;
  c.kv_token_stride = a.kv_token_stride;
  c.kv_head_stride = a.kv_head_stride;
  c.block_table = a.block_table;
  c.block_table_stride = a.block_table_stride;
  c.seqlens = a.seqlens;
  c.out = a.out;
  c.out_batch_stride = a.out_batch_stride;
  c.out_seq_stride = a.out_seq_stride;
  c.out_head_stride = a.out_head_stride;
  c.lse = a.lse;
  c.lse_batch_stride = a.lse_batch_stride;
  c.lse_head_stride = a.lse_head_stride;
  c.lse_seq_stride = a.lse_seq_stride;
  c.softmax_scale = a.softmax_scale;
  c.causal = a.causal ? 1 : 0;
  c.lse_base = static_cast<int32_t>(a.lse_base);
  c.descale_k = a.descale_k;
  c.descale_q = a.descale_q;
  c.cu_seqlens_q = a.cu_seqlens_q;
  c.total_q = a.total_q;
  return c;
}

Options to_cpp(const etap_options* c) {
  Options o;
  if (c != nullptr) {
    o.num_sms = c->num_sms;
    o.checked = c->checked != 0;
  }
  return o;
}

MergeArgs to_cpp(const etap_merge_args& c) {
  MergeArgs m;
  m.num_states = c.num_states;
  m.rows = c.rows;
  m.dim = c.dim;
  m.o_states = c.o_states;
  m.o_state_stride = c.o_state_stride;
  m.o_row_stride = c.o_row_stride;
  m.lse_states = c.lse_states;
  m.lse_state_stride = c.lse_state_stride;
  m.lse_base = static_cast<LseBase>(c.lse_base);
  m.out = c.out;
  m.out_dtype = static_cast<DType>(c.out_dtype);
  m.out_row_stride = c.out_row_stride;
  m.lse_out = c.lse_out;
  return m;
}

// Sizes for the C API: 0 and a recorded message when they cannot be computed.
size_t c_size(const etap_problem* problem, const etap_options* options, size_t api::BufferSizes::*member) {
  if (problem == nullptr) {
    null_argument("problem");
    return 0;
  }
  size_t result = 0;
  guarded([&] {
    api::BufferSizes sizes{};
    Status status = api::buffer_sizes(to_cpp(*problem), to_cpp(options), &sizes);
    if (status.ok()) result = sizes.*member;
    return status;
  });
  return result;
}

// The etap_make_*_args shell: a null args or problem is recorded (args then all zero, which etap_validate
// rejects: batch 0); otherwise *args = to_c(make(to_cpp(*problem))).
template <typename Make>
void fill_args(const etap_problem* problem, etap_decode_args* args, Make&& make) {
  if (args == nullptr) {
    null_argument("args");
    return;
  }
  if (problem == nullptr) {
    null_argument("problem");
    *args = etap_decode_args{};
    return;
  }
  *args = to_c(make(to_cpp(*problem)));
}

}  // namespace

extern "C" {

etap_problem etap_default_problem(void) {
  return to_c(DecodeProblem{});
}

etap_options etap_default_options(void) {
  const Options o;
  return {o.num_sms, o.checked ? 1 : 0};
}

void etap_make_dense_args(const etap_problem* problem, const void* q, const void* kv_cache,
                          const int32_t* block_table, const int32_t* seqlens, void* out, float* lse,
                          float softmax_scale, int32_t causal, int32_t lse_base, etap_decode_args* args) {
  fill_args(problem, args, [&](const DecodeProblem& p) {
    return etap::make_dense_args(p, q, kv_cache, block_table, seqlens, out, lse, softmax_scale, causal != 0,
                                 static_cast<LseBase>(lse_base));
  });
}

void etap_make_varlen_args(const etap_problem* problem, int32_t total_q, const int32_t* cu_seqlens_q,
                           const void* q, const void* kv_cache, const int32_t* block_table,
                           const int32_t* seqlens, void* out, float* lse, float softmax_scale, int32_t causal,
                           int32_t lse_base, etap_decode_args* args) {
  fill_args(problem, args, [&](const DecodeProblem& p) {
    return etap::make_varlen_args(p, total_q, cu_seqlens_q, q, kv_cache, block_table, seqlens, out, lse,
                                  softmax_scale, causal != 0, static_cast<LseBase>(lse_base));
  });
}

size_t etap_plan_bytes(const etap_problem* problem, const etap_options* options) {
  return c_size(problem, options, &api::BufferSizes::plan_bytes);
}

size_t etap_workspace_bytes(const etap_problem* problem, const etap_options* options) {
  return c_size(problem, options, &api::BufferSizes::workspace_bytes);
}

etap_status etap_validate(const etap_decode_args* args) {
  if (args == nullptr) return null_argument("args");
  return guarded([&] { return etap::validate(to_cpp(*args)); });
}

etap_status etap_plan(const etap_decode_args* args, void* plan_buffer, size_t plan_buffer_bytes, void* stream,
                      const etap_options* options) {
  if (args == nullptr) return null_argument("args");
  return guarded([&] {
    return etap::plan(to_cpp(*args), plan_buffer, plan_buffer_bytes, static_cast<cudaStream_t>(stream),
                      to_cpp(options));
  });
}

etap_status etap_decode(const etap_decode_args* args, const void* plan_buffer, size_t plan_buffer_bytes,
                        void* workspace, size_t workspace_bytes, void* stream, const etap_options* options) {
  if (args == nullptr) return null_argument("args");
  return guarded([&] {
    return etap::decode(to_cpp(*args), plan_buffer, plan_buffer_bytes, workspace, workspace_bytes,
                        static_cast<cudaStream_t>(stream), to_cpp(options));
  });
}

etap_status etap_plan_from_seqlens(const etap_problem* problem, const int32_t* seqlens, void* plan_buffer,
                                   size_t plan_buffer_bytes, void* stream, const etap_options* options) {
  if (problem == nullptr) return null_argument("problem");
  return guarded([&] {
    return etap::plan(to_cpp(*problem), seqlens, plan_buffer, plan_buffer_bytes,
                      static_cast<cudaStream_t>(stream), to_cpp(options));
  });
}

etap_status etap_merge_states(const etap_merge_args* args, void* stream) {
  if (args == nullptr) return null_argument("args");
  return guarded([&] { return etap::merge_states(to_cpp(*args), static_cast<cudaStream_t>(stream)); });
}

etap_status etap_check_device(int device) {
  return guarded([&] { return etap::check_device(device); });
}

const char* etap_status_string(etap_status status) {
  return etap::to_string(static_cast<StatusCode>(status));
}

const char* etap_last_error(void) {
  return last_error.c_str();
}

}  // extern "C"
