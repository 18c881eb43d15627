// Checked mode: verifies on the device what validate() cannot see from the host — every seqlen fits its
// block-table row, every used page id is inside the cache and (varlen) the query offsets keep their contract
// — and names the first offending request.
#include <cstdint>

#include "common/constants.hpp"
#include "common/status.hpp"
#include "decode/checked/checked.hpp"
#include "decode/launch/launch.hpp"
#include "decode/plan/plan.hpp"

namespace etap::decoding {
namespace {

constexpr int kCheckThreads = 256;
constexpr int kMaxCheckBlocks = 1024;

// A violation is one 64-bit key, request above and (column + kFirstPageField) below, so that atomicMin
// keeps the first offending request and, within it, its query offsets (varlen, field 0), then its seqlen
// (field 1), before the first bad page.
using Verdict = unsigned long long;
constexpr Verdict kNoViolation = ~Verdict{0};
constexpr int kRequestShift = 32;
constexpr Verdict kColumnMask = 0xffffffffull;
constexpr Verdict kQuerySpanViolation = 0;
constexpr Verdict kSeqlenViolation = 1;
constexpr Verdict kFirstPageField = 2;

// Varlen contract of request r (etap.hpp, DecodeArgs::cu_seqlens_q).
__device__ bool query_span_ok(const int32_t* cu_seqlens_q, int64_t r, int32_t max_seqlen_q, int32_t total_q) {
  const int32_t begin = cu_seqlens_q[r], end = cu_seqlens_q[r + 1];
  if (r == 0 && begin != 0) return false;
  return begin >= 0 && end >= begin && end - begin <= max_seqlen_q && end <= total_q;
}

__global__ void __launch_bounds__(kCheckThreads)
    check_kernel(const int32_t* __restrict__ seqlens,      // [batch]
                 const int32_t* __restrict__ block_table,  // [batch, max_pages] (row stride table_stride)
                 int64_t table_stride, int32_t batch, int32_t page_size, int32_t max_pages, int32_t num_pages,
                 const int32_t* __restrict__ cu_seqlens_q,  // [batch + 1] or null
                 int32_t max_seqlen_q, int32_t total_q, Verdict* verdict) {
  const int lane = threadIdx.x % kWarpSize;
  const int64_t warps = int64_t{gridDim.x} * (blockDim.x / kWarpSize);
  for (int64_t r = (int64_t{blockIdx.x} * blockDim.x + threadIdx.x) / kWarpSize; r < batch; r += warps) {
    const Verdict request_key = static_cast<Verdict>(r) << kRequestShift;
    if (cu_seqlens_q != nullptr && lane == 0 && !query_span_ok(cu_seqlens_q, r, max_seqlen_q, total_q))
      atomicMin(verdict, request_key | kQuerySpanViolation);
    const int64_t seqlen = seqlens[r];
    if (seqlen < 0 || seqlen > int64_t{max_pages} * page_size) {
      if (lane == 0) atomicMin(verdict, request_key | kSeqlenViolation);
      continue;
    }
    const int64_t pages = (seqlen + page_size - 1) / page_size;
    for (int64_t c = lane; c < pages; c += kWarpSize) {
      const int32_t id = block_table[r * table_stride + c];
      if (id < 0 || id >= num_pages)
        atomicMin(verdict, request_key | static_cast<Verdict>(c + kFirstPageField));
    }
  }
}

Status cuda_failure(const char* what, cudaError_t error) {
  return {StatusCode::kCudaError,
          common::str("checked mode: ", what, " failed: ", cudaGetErrorString(error))};
}

template <typename T>
cudaError_t read_back(T* host, const T* device, cudaStream_t stream) {
  const cudaError_t error = cudaMemcpyAsync(host, device, sizeof(T), cudaMemcpyDeviceToHost, stream);
  return error != cudaSuccess ? error : cudaStreamSynchronize(stream);
}

}  // namespace

Status run_checks(const DecodeArgs& args, void* workspace, cudaStream_t stream) {
  cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
  if (cudaStreamIsCapturing(stream, &capture) != cudaSuccess) cudaGetLastError();
  if (capture != cudaStreamCaptureStatusNone)
    return {StatusCode::kInvalidArgument,
            "checked mode synchronises the stream and cannot run during CUDA graph capture; turn off "
            "Options.checked and ETAP_CHECKED for captured calls"};

  const DecodeProblem& p = args.problem;
  auto* verdict = reinterpret_cast<Verdict*>(static_cast<char*>(workspace) + WorkspaceLayout::kCheckOffset);
  cudaError_t error = cudaMemsetAsync(verdict, 0xff, sizeof(Verdict), stream);
  if (error != cudaSuccess) return cuda_failure("clearing the verdict", error);
  const int64_t warps_needed = p.batch;
  const int64_t blocks = (warps_needed * kWarpSize + kCheckThreads - 1) / kCheckThreads;
  check_kernel<<<static_cast<unsigned>(blocks < kMaxCheckBlocks ? blocks : kMaxCheckBlocks), kCheckThreads, 0,
                 stream>>>(args.seqlens, args.block_table, args.block_table_stride, p.batch, p.page_size,
                           p.max_pages_per_seq, p.num_pages, p.varlen_q ? args.cu_seqlens_q : nullptr, p.s_q,
                           args.total_q, verdict);
  if ((error = cudaGetLastError()) != cudaSuccess) return cuda_failure("launching the check kernel", error);
  Verdict found = kNoViolation;
  if ((error = read_back(&found, verdict, stream)) != cudaSuccess)
    return cuda_failure("the check kernel", error);
  if (found == kNoViolation) return Status::Ok();

  const auto request = static_cast<int64_t>(found >> kRequestShift);
  if ((found & kColumnMask) == kQuerySpanViolation) {
    int32_t span[2] = {0, 0};
    for (int k = 0; k < 2; ++k)
      if ((error = read_back(&span[k], args.cu_seqlens_q + request + k, stream)) != cudaSuccess)
        return cuda_failure("reading back cu_seqlens_q", error);
    return {StatusCode::kCheckFailed,
            common::str("checked mode: request ", request, " has cu_seqlens_q[", request, "] = ", span[0],
                        ", cu_seqlens_q[", request + 1, "] = ", span[1],
                        "; they must start at 0, not decrease, give at most max_seqlen_q = s_q = ", p.s_q,
                        " query tokens per request and end at or below total_q = ", args.total_q)};
  }
  int32_t seqlen = 0;
  if ((error = read_back(&seqlen, args.seqlens + request, stream)) != cudaSuccess)
    return cuda_failure("reading back seqlens", error);
  if ((found & kColumnMask) == kSeqlenViolation) {
    if (seqlen < 0)
      return {StatusCode::kCheckFailed, common::str("checked mode: request ", request, " has seqlen ", seqlen,
                                                    "; seqlens must not be negative")};
    return {StatusCode::kCheckFailed,
            common::str("checked mode: request ", request, " has seqlen ", seqlen,
                        " but its block-table row holds ", p.max_pages_per_seq, " pages (",
                        int64_t{p.max_pages_per_seq} * p.page_size, " tokens)")};
  }
  const auto column = static_cast<int64_t>((found & kColumnMask) - kFirstPageField);
  int32_t page_id = 0;
  if ((error = read_back(&page_id, args.block_table + request * args.block_table_stride + column, stream)) !=
      cudaSuccess)
    return cuda_failure("reading back block_table", error);
  return {StatusCode::kCheckFailed,
          common::str("checked mode: request ", request, " uses page id ", page_id, " at block_table[",
                      request, "][", column, "]; the cache has ", p.num_pages, " pages")};
}

Status check_plan(const void* plan_buffer, int32_t batch, int32_t num_parts, cudaStream_t stream) {
  PlanHeader header{};
  const cudaError_t error = read_back(&header, static_cast<const PlanHeader*>(plan_buffer), stream);
  if (error != cudaSuccess) return cuda_failure("reading back the plan header", error);
  if (plan_matches(header, batch, num_parts)) return Status::Ok();
  return {StatusCode::kCheckFailed,
          common::str("checked mode: the plan buffer holds a plan for batch ", header.batch, " over ",
                      header.num_parts, " parts, but this decode has batch ", batch, " over ", num_parts,
                      " parts; call etap::plan with this problem (and device) first")};
}

}  // namespace etap::decoding
