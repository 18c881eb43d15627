// The unfused baseline: what a user without an MLA kernel writes with cuBLAS.
//   1. gather each request's pages into a contiguous, zero-padded Kg [b, s_k_pad, 576];
//   2. S = Q·Kᵀ per request (cublasGemmStridedBatchedEx, fp32 out)                  [b, R, s_k_pad];
//   3. masked softmax: scale, seqlen/causal mask, P in q's dtype, lse (natural log)    [b, R, s_k_pad];
//   4. O = P·V per request, V = the first 512 columns of Kg (ld 576), written in q's dtype into `out`.
// Row r of a request is (query token r / h_q, head r % h_q), so Q and out are plain [R, d] matrices.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cmath>

#include "cuda_util.hpp"
#include "implementation.hpp"

namespace etap::bench {
namespace {

constexpr int kGatherThreads = 256;
constexpr int kGatherTokensPerBlock = 32;
constexpr int kSoftmaxThreads = 256;
constexpr int kWarpSize = 32;
constexpr int kPadTokens = 64;  // s_k rounded up so that every GEMM leading dimension is 16-byte aligned
constexpr int kMaxGridY = 65535;
constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

// One request's rows: tokens ≥ seqlen are zero (never the cache's content: its NaN poison would survive 0·x).
__global__ void __launch_bounds__(kGatherThreads)
    gather_kernel(const char* __restrict__ kv, int64_t page_stride_bytes, int64_t token_stride_bytes,
                  const int32_t* __restrict__ block_table, int64_t table_stride,
                  const int32_t* __restrict__ seqlens, int32_t page_size, int32_t max_pages, int32_t row_vecs,
                  int32_t s_k_pad, uint4* __restrict__ kg) {
  const int32_t b = blockIdx.y;
  const int32_t t0 = blockIdx.x * kGatherTokensPerBlock;
  const int32_t len = min(max(seqlens[b], 0), max_pages * page_size);
  const int32_t total = kGatherTokensPerBlock * row_vecs;
  for (int32_t idx = threadIdx.x; idx < total; idx += blockDim.x) {
    const int32_t t = t0 + idx / row_vecs, v = idx % row_vecs;
    if (t >= s_k_pad) break;
    uint4 value = make_uint4(0, 0, 0, 0);
    if (t < len) {
      const int64_t page = block_table[b * table_stride + t / page_size];
      const char* row = kv + page * page_stride_bytes + (t % page_size) * token_stride_bytes;
      value = reinterpret_cast<const uint4*>(row)[v];
    }
    kg[(static_cast<int64_t>(b) * s_k_pad + t) * row_vecs + v] = value;
  }
}

struct MaxSum {
  float max, sum;  // running max and Σ exp2(x − max), log2 domain
};

__device__ __forceinline__ MaxSum merge(MaxSum a, MaxSum b) {
  if (a.max == -INFINITY) return b;
  if (b.max == -INFINITY) return a;
  const float m = fmaxf(a.max, b.max);
  return {m, a.sum * exp2f(a.max - m) + b.sum * exp2f(b.max - m)};
}

template <typename T>
__device__ __forceinline__ T to_half(float v);
template <>
__device__ __forceinline__ __nv_bfloat16 to_half(float v) {
  return __float2bfloat16_rn(v);
}
template <>
__device__ __forceinline__ __half to_half(float v) {
  return __float2half_rn(v);
}

// One block per (row, request): keys [0, limit) with limit = seqlen, or seqlen − s_q + s + 1 when causal.
template <typename T>
__global__ void __launch_bounds__(kSoftmaxThreads)
    softmax_kernel(const float* __restrict__ s, int32_t s_k_pad, int32_t rows, int32_t h_q, int32_t s_q,
                   const int32_t* __restrict__ seqlens, float scale_log2, bool causal, T* __restrict__ p,
                   float* __restrict__ lse, int64_t lse_batch_stride, int64_t lse_head_stride,
                   int64_t lse_seq_stride) {
  __shared__ MaxSum warp_partial[kSoftmaxThreads / kWarpSize];
  __shared__ MaxSum total;
  const int32_t r = blockIdx.x, b = blockIdx.y;
  const int32_t query = r / h_q, head = r % h_q;
  const int32_t len = min(max(seqlens[b], 0), s_k_pad);
  const int32_t limit = causal ? max(0, min(len, len - s_q + query + 1)) : len;
  const int64_t row_offset = (static_cast<int64_t>(b) * rows + r) * s_k_pad;
  const float* row = s + row_offset;

  MaxSum acc{-INFINITY, 0.f};
  for (int32_t j = threadIdx.x; j < limit; j += blockDim.x) acc = merge(acc, {row[j] * scale_log2, 1.f});
#pragma unroll
  for (int offset = kWarpSize / 2; offset > 0; offset /= 2)
    acc = merge(
        acc, {__shfl_xor_sync(0xFFFFFFFFu, acc.max, offset), __shfl_xor_sync(0xFFFFFFFFu, acc.sum, offset)});
  if (threadIdx.x % kWarpSize == 0) warp_partial[threadIdx.x / kWarpSize] = acc;
  __syncthreads();
  if (threadIdx.x == 0) {
    MaxSum all{-INFINITY, 0.f};
    for (int w = 0; w < kSoftmaxThreads / kWarpSize; ++w) all = merge(all, warp_partial[w]);
    total = all;
    // A row that sees no key: out = 0 (P = 0) and lse = +inf, FlashMLA's convention.
    lse[b * lse_batch_stride + head * lse_head_stride + query * lse_seq_stride] =
        limit > 0 ? (all.max + log2f(all.sum)) * kLn2 : INFINITY;
  }
  __syncthreads();
  const MaxSum all = total;
  const float inv_sum = limit > 0 ? 1.f / all.sum : 0.f;
  T* out_row = p + row_offset;
  for (int32_t j = threadIdx.x; j < s_k_pad; j += blockDim.x)
    out_row[j] = to_half<T>(j < limit ? exp2f(row[j] * scale_log2 - all.max) * inv_sum : 0.f);
}

class UnfusedCublas : public Implementation {
 public:
  explicit UnfusedCublas(CublasHandle& cublas) : cublas_(cublas) {}
  std::string name() const override { return "cublas"; }

  CallStatus setup(const DecodeArgs& args, std::span<const int32_t> seqlens, cudaStream_t) override {
    const DecodeProblem& p = args.problem;
    if (p.h_kv != 1) return {Outcome::kUnsupported, "h_kv must be 1"};
    if (p.varlen_q) return {Outcome::kUnsupported, "fixed query lengths only"};
    if (p.q_dtype != p.kv_dtype || p.q_dtype != p.out_dtype ||
        (p.q_dtype != DType::kBF16 && p.q_dtype != DType::kFP16))
      return {Outcome::kUnsupported, "q, kv and out must all be bf16 or all fp16"};
    if ((p.d_qk * 2) % 16 != 0 || p.d_v > p.d_qk) return {Outcome::kUnsupported, "head dims"};
    const int64_t rows = p.rows();
    // Q and out as [R, d] matrices per request: dense strides only.
    if (args.q_head_stride != p.d_qk || args.q_seq_stride != p.h_q * args.q_head_stride ||
        args.q_batch_stride != p.s_q * args.q_seq_stride || args.out_head_stride != p.d_v ||
        args.out_seq_stride != p.h_q * args.out_head_stride ||
        args.out_batch_stride != p.s_q * args.out_seq_stride || args.kv_token_stride != p.d_qk ||
        args.lse == nullptr)
      return {Outcome::kUnsupported, "needs dense q/out/kv strides and an lse buffer"};
    const int32_t max_len = seqlens.empty() ? 0 : *std::max_element(seqlens.begin(), seqlens.end());
    const int32_t cap = p.max_pages_per_seq * p.page_size;
    s_k_pad_ = ((std::min(std::max(max_len, 1), cap) + kPadTokens - 1) / kPadTokens) * kPadTokens;
    if (p.batch > kMaxGridY) return {Outcome::kUnsupported, "batch > 65535"};
    const int64_t elems = static_cast<int64_t>(p.batch) * s_k_pad_;
    kg_ = DeviceBuffer(elems * p.d_qk * 2);
    s_ = DeviceBuffer(elems * rows * sizeof(float));
    p_ = DeviceBuffer(elems * rows * 2);
    return {};
  }

  CallStatus call(const DecodeArgs& args, cudaStream_t stream) override {
    const DecodeProblem& p = args.problem;
    const int32_t rows = p.rows();
    const bool bf16 = p.q_dtype == DType::kBF16;
    const cudaDataType_t half = bf16 ? CUDA_R_16BF : CUDA_R_16F;
    const int32_t row_vecs = p.d_qk * 2 / static_cast<int32_t>(sizeof(uint4));

    const dim3 gather_grid((s_k_pad_ + kGatherTokensPerBlock - 1) / kGatherTokensPerBlock, p.batch);
    gather_kernel<<<gather_grid, kGatherThreads, 0, stream>>>(
        static_cast<const char*>(args.kv_cache), args.kv_page_stride * 2, args.kv_token_stride * 2,
        args.block_table, args.block_table_stride, args.seqlens, p.page_size, p.max_pages_per_seq, row_vecs,
        s_k_pad_, kg_.get<uint4>());
    if (cudaError_t e = cudaGetLastError(); e != cudaSuccess) return {Outcome::kError, cudaGetErrorString(e)};

    cublasHandle_t h = handle(stream);
    const float one = 1.f, zero = 0.f;
    // Column-major view: Sᵀ[s_k, R] = Kgᵀ·Q, i.e. row-major S[R, s_k] = Q·Kgᵀ.
    if (cublasStatus_t st = cublasGemmStridedBatchedEx(
            h, CUBLAS_OP_T, CUBLAS_OP_N, s_k_pad_, rows, p.d_qk, &one, kg_.get(), half, p.d_qk,
            static_cast<int64_t>(s_k_pad_) * p.d_qk, args.q, half, p.d_qk, args.q_batch_stride, &zero,
            s_.get(), CUDA_R_32F, s_k_pad_, static_cast<int64_t>(rows) * s_k_pad_, p.batch,
            CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
        st != CUBLAS_STATUS_SUCCESS)
      return {Outcome::kError, std::string("QK^T GEMM: ") + cublasGetStatusString(st)};

    const dim3 softmax_grid(rows, p.batch);
    const float scale_log2 = args.softmax_scale * kLog2e;
    if (bf16)
      softmax_kernel<<<softmax_grid, kSoftmaxThreads, 0, stream>>>(
          s_.get<const float>(), s_k_pad_, rows, p.h_q, p.s_q, args.seqlens, scale_log2, args.causal,
          p_.get<__nv_bfloat16>(), args.lse, args.lse_batch_stride, args.lse_head_stride,
          args.lse_seq_stride);
    else
      softmax_kernel<<<softmax_grid, kSoftmaxThreads, 0, stream>>>(
          s_.get<const float>(), s_k_pad_, rows, p.h_q, p.s_q, args.seqlens, scale_log2, args.causal,
          p_.get<__half>(), args.lse, args.lse_batch_stride, args.lse_head_stride, args.lse_seq_stride);
    if (cudaError_t e = cudaGetLastError(); e != cudaSuccess) return {Outcome::kError, cudaGetErrorString(e)};

    // Column-major view: Oᵀ[d_v, R] = Vᵀ·Pᵀ with Vᵀ the first d_v rows of Kgᵀ (ld 576).
    if (cublasStatus_t st = cublasGemmStridedBatchedEx(
            h, CUBLAS_OP_N, CUBLAS_OP_N, p.d_v, rows, s_k_pad_, &one, kg_.get(), half, p.d_qk,
            static_cast<int64_t>(s_k_pad_) * p.d_qk, p_.get(), half, s_k_pad_,
            static_cast<int64_t>(rows) * s_k_pad_, &zero, args.out, half, p.d_v, args.out_batch_stride,
            p.batch, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
        st != CUBLAS_STATUS_SUCCESS)
      return {Outcome::kError, std::string("PV GEMM: ") + cublasGetStatusString(st)};
    return {};
  }

  void release() override {
    kg_.reset();
    s_.reset();
    p_.reset();
    bound_ = false;
  }

 private:
  // cublasSetStream resets the workspace, so it is set once per stream, never inside a captured region's
  // loop.
  cublasHandle_t handle(cudaStream_t stream) {
    if (stream != stream_ || !bound_) {
      handle_ = cublas_.on(stream);
      stream_ = stream;
      bound_ = true;
    }
    return handle_;
  }

  CublasHandle& cublas_;
  cublasHandle_t handle_ = nullptr;
  cudaStream_t stream_ = nullptr;
  bool bound_ = false;
  int32_t s_k_pad_ = 0;
  DeviceBuffer kg_, s_,
      p_;  // [b, s_k_pad, d_qk] gathered rows; [b, R, s_k_pad] fp32 scores; same, probabilities
};

}  // namespace

std::unique_ptr<Implementation> make_cublas(CublasHandle& cublas) {
  return std::make_unique<UnfusedCublas>(cublas);
}

}  // namespace etap::bench
