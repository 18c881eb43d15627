// Names, sizes and dense layouts of the public types.
#include <cinttypes>
#include <cstdio>

#include "api/api_internal.hpp"

namespace etap {

const char* to_string(StatusCode code) {
  switch (code) {
    case StatusCode::kOk:
      return "ok";
    case StatusCode::kInvalidArgument:
      return "invalid argument";
    case StatusCode::kUnsupported:
      return "unsupported";
    case StatusCode::kNoDevice:
      return "no device";
    case StatusCode::kWorkspaceTooSmall:
      return "workspace too small";
    case StatusCode::kCudaError:
      return "CUDA error";
    case StatusCode::kCheckFailed:
      return "check failed";
  }
  return "unknown status";
}

const char* to_string(DType dtype) {
  switch (dtype) {
    case DType::kBF16:
      return "bf16";
    case DType::kFP16:
      return "fp16";
    case DType::kFP8E4M3:
      return "fp8_e4m3";
    case DType::kFP32:
      return "fp32";
  }
  return "unknown dtype";
}

const char* to_string(KvFormat format) {
  switch (format) {
    case KvFormat::kDense:
      return "dense";
    case KvFormat::kFp8PerTensor:
      return "fp8_per_tensor";
    case KvFormat::kFp8DeepSeekV32:
      return "fp8_deepseek_v32";
  }
  return "unknown kv_format";
}

std::size_t dtype_bytes(DType dtype) {
  switch (dtype) {
    case DType::kBF16:
    case DType::kFP16:
      return 2;
    case DType::kFP8E4M3:
      return 1;
    case DType::kFP32:
      return 4;
  }
  return 0;
}

DecodeArgs make_dense_args(const DecodeProblem& problem, const void* q, const void* kv_cache,
                           const int32_t* block_table, const int32_t* seqlens, void* out, float* lse,
                           float softmax_scale, bool causal, LseBase lse_base) {
  const DecodeProblem& p = problem;
  DecodeArgs args;
  args.problem = p;

  args.q = q;
  args.q_head_stride = p.d_qk;
  args.q_seq_stride = int64_t{p.h_q} * args.q_head_stride;
  args.q_batch_stride = int64_t{p.s_q} * args.q_seq_stride;

  args.kv_cache = kv_cache;
  args.kv_head_stride = api::kv_row_elements(p);
  args.kv_token_stride = int64_t{p.h_kv} * args.kv_head_stride;
  args.kv_page_stride = int64_t{p.page_size} * args.kv_token_stride;

  args.block_table = block_table;
  args.block_table_stride = p.max_pages_per_seq;
  args.seqlens = seqlens;

  args.out = out;
  args.out_head_stride = p.d_v;
  args.out_seq_stride = int64_t{p.h_q} * args.out_head_stride;
  args.out_batch_stride = int64_t{p.s_q} * args.out_seq_stride;

  args.lse = lse;
  args.lse_seq_stride = 1;
  args.lse_head_stride = p.s_q;
  args.lse_batch_stride = int64_t{p.h_q} * args.lse_head_stride;

  args.softmax_scale = softmax_scale;
  args.causal = causal;
  args.lse_base = lse_base;
  return args;
}

DecodeArgs make_varlen_args(const DecodeProblem& problem, int32_t total_q, const int32_t* cu_seqlens_q,
                            const void* q, const void* kv_cache, const int32_t* block_table,
                            const int32_t* seqlens, void* out, float* lse, float softmax_scale, bool causal,
                            LseBase lse_base) {
  DecodeArgs args =
      make_dense_args(problem, q, kv_cache, block_table, seqlens, out, lse, softmax_scale, causal, lse_base);
  args.cu_seqlens_q = cu_seqlens_q;
  args.total_q = total_q;
  // Packed: one token after another, the batch dimension folded into the token one.
  args.q_batch_stride = 0;
  args.out_batch_stride = 0;
  args.lse_seq_stride = 1;
  args.lse_head_stride = total_q;
  args.lse_batch_stride = 0;
  return args;
}

namespace api {

int64_t kv_row_elements(const DecodeProblem& problem) {
  return problem.kv_format == KvFormat::kFp8DeepSeekV32 ? Fp8DeepSeekV32Token::kBytes : problem.d_qk;
}

std::string hex_address(const void* pointer) {
  char text[2 + 16 + 1];
  std::snprintf(text, sizeof(text), "0x%" PRIxPTR, reinterpret_cast<std::uintptr_t>(pointer));
  return text;
}

}  // namespace api
}  // namespace etap
