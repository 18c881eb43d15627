// The plan kernel: the split-KV schedule of plan.hpp, computed by one CTA from device seqlens so that
// planning needs no host synchronisation and can be captured in a CUDA graph. Any batch size: the scans walk
// the requests in chunks of one CTA. The tests' host twin (src/testing/plan_host.cpp) builds the same buffer.
#include <cstdint>

#include "common/constants.hpp"
#include "decode/launch/launch.hpp"
#include "hopper/fence.cuh"

namespace etap::decoding {
namespace {

constexpr int kPlanThreads = 1024;
constexpr int kPlanWarps = kPlanThreads / kWarpSize;
static_assert(kPlanWarps == kWarpSize, "the second level of the CTA scan is one warp");

// The split scan carries two counters in one 64-bit word: split requests above, partial slots below
// (slots ≤ 2(P − 1), so the low half never carries into the high one).
constexpr int kSplitCountShift = 32;
constexpr int64_t kSlotMask = 0xffffffffll;

template <typename T>
__device__ T warp_inclusive_scan(T value, int lane) {
  for (int offset = 1; offset < kWarpSize; offset *= 2) {
    const T other = __shfl_up_sync(kFullWarpMask, value, offset);
    if (lane >= offset) value += other;
  }
  return value;
}

// Exclusive prefix sum over the CTA; `total` receives the CTA-wide sum. All threads must call it.
template <typename T>
__device__ T block_exclusive_scan(T value, T& total) {
  __shared__ T warp_totals[kPlanWarps];
  const int lane = threadIdx.x % kWarpSize;
  const int warp = threadIdx.x / kWarpSize;
  const T inclusive = warp_inclusive_scan(value, lane);
  if (lane == kWarpSize - 1) warp_totals[warp] = inclusive;
  __syncthreads();
  if (warp == 0) warp_totals[lane] = warp_inclusive_scan(warp_totals[lane], lane);
  __syncthreads();
  const T before = warp == 0 ? T{0} : warp_totals[warp - 1];
  total = warp_totals[kPlanWarps - 1];
  __syncthreads();  // warp_totals is reused by the next call
  return before + inclusive - value;
}

__global__ void __launch_bounds__(kPlanThreads, 1)
    plan_kernel(const int32_t* __restrict__ seqlens,  // [batch]
                int32_t batch, int32_t page_size, int32_t max_pages, PlanParams params,
                int32_t* plan) {  // PlanLayout words
  // The decode kernel, launched next as a programmatic dependent, may become resident now: it waits for this
  // grid's completion (griddepcontrol.wait) before it reads the plan.
  hopper::launch_dependents();
  const PlanLayout layout{batch, params.num_parts};
  const int32_t fixed = params.fixed_cost;
  int32_t* prefix = plan + layout.cost_prefix();
  int32_t* first_part = plan + layout.first_part();
  int32_t* num_splits = plan + layout.num_splits();
  int32_t* slot_offset = plan + layout.slot_offset();
  int32_t* split_requests = plan + layout.split_requests();

  // C_i: exclusive prefix of cost_i = pages_i + F.
  int32_t cost_carry = 0;
  for (int32_t base = 0; base < batch; base += kPlanThreads) {
    const int32_t i = base + threadIdx.x;
    const int32_t cost = i < batch ? request_blocks(seqlens[i], page_size, max_pages) + fixed : 0;
    int32_t chunk_total;
    const int32_t before = block_exclusive_scan(cost, chunk_total);
    if (i < batch) prefix[i] = cost_carry + before;
    cost_carry += chunk_total;
  }
  const int32_t total = cost_carry;
  const int32_t w = work_per_part(total, params.num_parts, params.min_work);

  // Part spans; partial slots and the split-request list in request order. Each thread reads back only the
  // prefix entries it wrote itself above.
  __shared__ int32_t max_splits;
  if (threadIdx.x == 0) max_splits = 1;
  __syncthreads();
  int64_t split_carry = 0;
  for (int32_t base = 0; base < batch; base += kPlanThreads) {
    const int32_t i = base + threadIdx.x;
    int32_t splits = 0;
    if (i < batch) {
      const PartSpan span =
          request_parts(prefix[i], request_blocks(seqlens[i], page_size, max_pages), fixed, w);
      splits = span.last - span.first + 1;
      first_part[i] = span.first;
      num_splits[i] = splits;
      if (splits > 1) atomicMax(&max_splits, splits);
    }
    const bool split = splits > 1;
    const int64_t mine = split ? (int64_t{1} << kSplitCountShift) | splits : 0;
    int64_t chunk_total;
    const int64_t before = split_carry + block_exclusive_scan(mine, chunk_total);
    if (i < batch) {
      slot_offset[i] = static_cast<int32_t>(before & kSlotMask);
      if (split) split_requests[before >> kSplitCountShift] = i;
    }
    split_carry += chunk_total;
  }
  const int32_t split_count = static_cast<int32_t>(split_carry >> kSplitCountShift);
  for (int32_t j = split_count + threadIdx.x; j < params.num_parts; j += kPlanThreads) split_requests[j] = -1;

  __syncthreads();  // max_splits is complete
  if (threadIdx.x == 0) {
    prefix[batch] = total;
    const PlanHeader header{batch, params.num_parts, w, fixed, split_count, total, max_splits, 0};
    const int32_t* words = reinterpret_cast<const int32_t*>(&header);
    for (int k = 0; k < static_cast<int>(sizeof(PlanHeader) / sizeof(int32_t)); ++k) plan[k] = words[k];
  }
  __syncthreads();  // first_part and num_splits of every request are visible to the whole CTA

  // Requests of part p: first_i and last_i are non-decreasing in i (plan.hpp), so binary search for the
  // first request ending at or after p and the last one starting at or before it.
  for (int32_t p = threadIdx.x; p < params.num_parts; p += kPlanThreads) {
    int32_t lo = 0, hi = batch;
    while (lo < hi) {
      const int32_t mid = (lo + hi) / 2;
      if (first_part[mid] + num_splits[mid] - 1 < p)
        lo = mid + 1;
      else
        hi = mid;
    }
    const int32_t begin = lo;
    lo = begin;
    hi = batch;
    while (lo < hi) {
      const int32_t mid = (lo + hi) / 2;
      if (first_part[mid] <= p)
        lo = mid + 1;
      else
        hi = mid;
    }
    const int32_t end = lo - 1;
    const bool touched = begin < batch && end >= begin;
    plan[layout.part_req_begin() + p] = touched ? begin : 0;
    plan[layout.part_req_end() + p] = touched ? end : -1;
  }
}

}  // namespace

cudaError_t launch_plan(const DecodeArgs& args, int32_t* plan, PlanParams params, cudaStream_t stream) {
  const DecodeProblem& problem = args.problem;
  plan_kernel<<<1, kPlanThreads, 0, stream>>>(args.seqlens, problem.batch, problem.page_size,
                                              problem.max_pages_per_seq, params, plan);
  return cudaGetLastError();
}

}  // namespace etap::decoding
