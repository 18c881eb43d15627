// Fills the kernel parameters and launches decode (kernel_launch.hpp) + combine.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <numeric>
#include <type_traits>

#include "common/constants.hpp"
#include "decode/combine/combine.cuh"
#include "decode/launch/kernel_launch.hpp"
#include "decode/launch/launch.hpp"
#include "decode/launch/rows_launch.hpp"

namespace etap::decoding {

KernelParams make_params(const DecodeArgs& args, const int32_t* plan, void* workspace, int32_t num_parts) {
  const DecodeProblem& pb = args.problem;
  const WorkspaceLayout ws = WorkspaceLayout::make(pb, num_parts);
  auto* bytes = static_cast<uint8_t*>(workspace);
  KernelParams p{};
  p.plan = plan;
  p.seqlens = args.seqlens;
  p.block_table = args.block_table;
  p.block_table_stride = args.block_table_stride;
  p.batch = pb.batch;
  p.s_q = pb.s_q;
  p.h_q = pb.h_q;
  p.rows = pb.s_q * pb.h_q;
  p.cu_seqlens_q = pb.varlen_q ? args.cu_seqlens_q : nullptr;
  p.total_q = pb.varlen_q ? args.total_q : 0;
  p.d_v = pb.d_v;
  p.max_pages = pb.max_pages_per_seq;
  p.page_size = pb.page_size;
  p.tiling = row_tiling(pb.s_q, pb.h_q, pb.h_kv);
  p.num_parts = num_parts;
  p.scale_log2 = args.softmax_scale * kLog2e;
  p.lse_out_scale = args.lse_base == LseBase::kNatural ? kLn2 : 1.f;
  p.causal = args.causal ? 1 : 0;
  p.kv_load = kv_load_of(pb.page_size);
  p.chunk_tokens = std::gcd(pb.page_size, kBlockTokens);
  p.kv_cache = args.kv_cache;
  p.kv_page_stride = args.kv_page_stride;
  p.kv_token_stride = args.kv_token_stride;
  p.kv_head_stride = args.kv_head_stride;
  p.out = args.out;
  p.out_batch_stride = pb.varlen_q ? 0 : args.out_batch_stride;  // varlen: rows address packed tokens
  p.out_seq_stride = args.out_seq_stride;
  p.out_head_stride = args.out_head_stride;
  p.lse = args.lse;
  p.lse_batch_stride = pb.varlen_q ? 0 : args.lse_batch_stride;
  p.lse_head_stride = args.lse_head_stride;
  p.lse_seq_stride = args.lse_seq_stride;
  p.partial_o = reinterpret_cast<float*>(bytes + WorkspaceLayout::kPartialOffset);
  p.partial_lse = reinterpret_cast<float*>(bytes + ws.lse_offset());
  p.descale_k = args.descale_k;
  p.descale_q = args.descale_q;
  return p;
}

namespace {

template <typename T, class Dims>
cudaError_t launch_kernel(const DecodeArgs& args, const KernelParams& kp, int32_t num_parts, bool rows_on_m,
                          cudaStream_t stream) {
  return rows_on_m ? launch_rows_kernel<T, Dims>(args, kp, num_parts, stream)
                   : launch_decode_kernel<T, Dims>(args, kp, num_parts, stream);
}

template <typename T>
cudaError_t launch_for_dims(const DecodeArgs& args, const KernelParams& kp, int32_t num_parts, bool rows_on_m,
                            cudaStream_t stream) {
  const DecodeProblem& pb = args.problem;
  if (pb.kv_format == KvFormat::kFp8PerTensor)  // validate() admits FP8 at 576/512 only
    return launch_fp8_kernel<T, CacheFormat::kFp8PerTensor>(args, kp, num_parts, stream);
  if (pb.kv_format == KvFormat::kFp8DeepSeekV32) {
    if constexpr (std::is_same_v<T, __nv_bfloat16>)
      return launch_fp8_kernel<T, CacheFormat::kFp8V32>(args, kp, num_parts, stream);
    return cudaErrorNotSupported;  // its RoPE is bf16: validate() admits bf16 queries only
  }
  if (pb.d_qk == DimsMla::kDqk && pb.d_v == DimsMla::kDv)
    return launch_kernel<T, DimsMla>(args, kp, num_parts, rows_on_m, stream);
  if (pb.d_qk == DimsLatent::kDqk && pb.d_v == DimsLatent::kDv)
    return launch_kernel<T, DimsLatent>(args, kp, num_parts, rows_on_m, stream);
  if (pb.d_qk == DimsRank256::kDqk && pb.d_v == DimsRank256::kDv)
    return launch_kernel<T, DimsRank256>(args, kp, num_parts, rows_on_m, stream);
  return cudaErrorNotSupported;  // validate() admits only the pairs above
}

}  // namespace

KvLoad kv_load_of(int32_t page_size) {
  if (page_size % kBlockTokens == 0) return KvLoad::kWholeBlocks;
  if (page_size % kMinChunkTokens == 0) return KvLoad::kChunks;
  return KvLoad::kGather;
}

cudaError_t launch_decode(const DecodeArgs& args, const int32_t* plan, PlanParams params, void* workspace,
                          cudaStream_t stream, KernelChoice choice) {
  const KernelParams kp = make_params(args, plan, workspace, params.num_parts);
  const bool rows_on_m = runs_rows_kernel(args.problem, choice);
  const cudaError_t e = args.problem.q_dtype == DType::kBF16
                            ? launch_for_dims<__nv_bfloat16>(args, kp, params.num_parts, rows_on_m, stream)
                            : launch_for_dims<__half>(args, kp, params.num_parts, rows_on_m, stream);
  if (e != cudaSuccess) return e;
  return launch_combine(args, kp, params.num_parts, stream);
}

}  // namespace etap::decoding
