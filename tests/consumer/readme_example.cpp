#include <cuda_runtime_api.h>

#include <cstdint>
#include <etap/etap.hpp>
#include <stdexcept>

// One MLA decode step of DeepSeek-V3 at 8-way tensor parallelism (16 query heads per GPU).
// All tensors are device memory in the dense layouts of etap.hpp.
void decode_step(int32_t batch, int32_t num_pages, int32_t max_pages_per_seq,
                 const void* q,               // [batch, 1, 16, 576] bf16
                 const void* kv_cache,        // [num_pages, 64, 1, 576] bf16
                 const int32_t* block_table,  // [batch, max_pages_per_seq]
                 const int32_t* seqlens,      // [batch]
                 void* out,                   // [batch, 1, 16, 512] bf16
                 float* lse,                  // [batch, 16, 1]
                 cudaStream_t stream) {
  etap::DecodeProblem problem;  // defaults: d_qk 576, d_v 512, page size 64, h_kv 1, bf16
  problem.batch = batch;
  problem.h_q = 16;
  problem.num_pages = num_pages;
  problem.max_pages_per_seq = max_pages_per_seq;
  const float softmax_scale = 0.1352337788608801f;  // 1/sqrt(192) * mscale^2, not 1/sqrt(576)

  // An engine allocates these once: plan() and decode() never allocate or synchronise (CUDA-graph safe).
  const std::size_t plan_size = etap::plan_bytes(problem);
  const std::size_t workspace_size = etap::workspace_bytes(problem);
  void* plan = nullptr;
  void* workspace = nullptr;
  if (cudaMalloc(&plan, plan_size) != cudaSuccess || cudaMalloc(&workspace, workspace_size) != cudaSuccess)
    throw std::runtime_error("cannot allocate the etap plan and workspace");

  const etap::DecodeArgs args =
      etap::make_dense_args(problem, q, kv_cache, block_table, seqlens, out, lse, softmax_scale,
                            /*causal=*/false, etap::LseBase::kNatural);
  etap::Status status = etap::plan(args, plan, plan_size, stream);  // split-KV schedule, on the GPU
  if (status.ok()) status = etap::decode(args, plan, plan_size, workspace, workspace_size, stream);

  cudaStreamSynchronize(stream);
  cudaFree(plan);
  cudaFree(workspace);
  if (!status.ok()) throw std::runtime_error(status.message());  // e.g. "etap needs compute capability 9.0"
}
