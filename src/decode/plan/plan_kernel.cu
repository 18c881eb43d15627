// The plan kernels: the split-KV schedule of plan.hpp, computed by one CTA from device seqlens so that
// planning needs no host synchronisation and can be captured in a CUDA graph. The decode kernel waits for the
// plan's completion, so the plan's latency is on every step's critical path.
//   - small_plan_kernel, for batch ≤ 512 and P ≤ 496 (every decode batch on an H200): one thread per
//     request and per part, five CTA barriers, 32-bit positions, the candidate grids searched four widths in
//     lockstep over a padded copy of the cost line in shared memory, each request's parts from the grid's
//     structure (plan.hpp part_at_grid) instead of a search;
//   - plan_kernel, any batch: the scans walk the requests in chunks of one CTA. Steps: cost prefix (scan);
//     score the candidate grids (a thread per grid and part, binary searches over the prefix); the best
//     grid's boundaries; each part's requests; each request's parts and partial slots (scan).
// The tests' host twin (src/testing/plan_host.cpp) builds the same buffer by walking the requests instead.
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

// The cost prefix is searched in shared memory up to this many words (32 KiB; batch ≤ 8191), in the plan
// buffer beyond.
constexpr int32_t kSharedPrefixWords = 8192;

// Grid variants scored: every candidate grid unsnapped (even slots) and snapped (odd slots).
constexpr int kGridVariants = 2 * kMaxGridCandidates;
static_assert(kGridVariants <= kWarpSize, "one warp picks the grid");

// The best grid variant (plan.hpp better_grid) by a butterfly over one warp: lane v holds variant v, lanes
// without one hold width = 0, which never wins. better_grid is a strict order, so every lane ends with the
// same choice.
__device__ GridScore best_grid(GridScore mine) {
  for (int offset = kWarpSize / 2; offset > 0; offset /= 2) {
    const GridScore other{__shfl_xor_sync(kFullWarpMask, mine.width, offset),
                          __shfl_xor_sync(kFullWarpMask, mine.snap, offset),
                          __shfl_xor_sync(kFullWarpMask, mine.max_work, offset),
                          __shfl_xor_sync(kFullWarpMask, mine.cuts, offset)};
    if (other.width > 0 && (mine.width == 0 || better_grid(other, mine))) mine = other;
  }
  return mine;
}

__global__ void __launch_bounds__(kPlanThreads, 1)
    plan_kernel(const int32_t* __restrict__ seqlens,  // [batch]
                int32_t batch, int32_t page_size, int32_t max_pages, PlanParams params,
                int32_t* plan) {  // PlanLayout words
  // The decode kernel, launched next as a programmatic dependent, may become resident now: it waits for this
  // grid's completion (griddepcontrol.wait) before it reads the plan.
  hopper::launch_dependents();
  __shared__ int32_t shared_prefix[kSharedPrefixWords];
  __shared__ int32_t bounds[kMaxParts + 1];
  __shared__ int32_t grid_max_work[kGridVariants], grid_cuts[kGridVariants];
  __shared__ int32_t chosen_width, chosen_snap, max_splits;
  const PlanLayout layout{batch, params.num_parts};
  const int32_t fixed = params.fixed_cost;
  const int32_t num_parts = params.num_parts;
  int32_t* prefix = plan + layout.cost_prefix();
  int32_t* part_begin = plan + layout.part_begin();
  int32_t* first_part = plan + layout.first_part();
  int32_t* num_splits = plan + layout.num_splits();
  int32_t* slot_offset = plan + layout.slot_offset();
  int32_t* split_requests = plan + layout.split_requests();
  const bool prefix_in_shared = batch + 1 <= kSharedPrefixWords;
  const int32_t* cost_line = prefix_in_shared ? shared_prefix : prefix;  // generic: shared or global

  // C_i: exclusive prefix of cost_i = pages_i + F.
  int32_t cost_carry = 0;
  for (int32_t base = 0; base < batch; base += kPlanThreads) {
    const int32_t i = base + threadIdx.x;
    const int32_t cost = i < batch ? request_blocks(seqlens[i], page_size, max_pages) + fixed : 0;
    int32_t chunk_total;
    const int32_t before = block_exclusive_scan(cost, chunk_total);
    if (i < batch) {
      prefix[i] = cost_carry + before;
      if (prefix_in_shared) shared_prefix[i] = cost_carry + before;
    }
    cost_carry += chunk_total;
  }
  const int32_t total = cost_carry;
  const int32_t w = work_per_part(total, num_parts, params.min_work);
  const GridCandidates candidates = grid_candidates(w);
  const int32_t most_parts = grid_parts(total, candidates.first_width);
  if (threadIdx.x == 0) {
    prefix[batch] = total;
    if (prefix_in_shared) shared_prefix[batch] = total;
    max_splits = 1;
  }
  if (threadIdx.x < kGridVariants) grid_max_work[threadIdx.x] = grid_cuts[threadIdx.x] = 0;
  __syncthreads();  // the whole cost line is visible

  // Score every candidate grid, unsnapped and snapped: one thread per (grid, part) finds the grid points at
  // the part's two ends.
  for (int32_t item = threadIdx.x; item < candidates.count * most_parts; item += kPlanThreads) {
    const int32_t k = item / most_parts, part = item % most_parts;
    const int32_t width = candidates.first_width + k;
    if (static_cast<int64_t>(part) * width >= total) continue;  // part ≥ grid_parts(total, width)
    const GridPoint lo = grid_point(cost_line, batch, width, part);
    const GridPoint hi = grid_point(cost_line, batch, width, part + 1);
    const int32_t snaps[2] = {0, snap_tolerance(width, w)};
#pragma unroll
    for (int v = 0; v < 2; ++v) {
      const Boundary begin = snap_boundary(lo, fixed, snaps[v]), end = snap_boundary(hi, fixed, snaps[v]);
      atomicMax(&grid_max_work[2 * k + v],
                static_cast<int32_t>(end.pos - begin.pos) + (begin.at_request ? 0 : fixed));
      if (begin.cut) atomicAdd(&grid_cuts[2 * k + v], 1);
    }
  }
  __syncthreads();
  if (threadIdx.x < kWarpSize) {
    const int v = threadIdx.x, k = v / 2;
    GridScore mine{0, 0, 0, 0};
    if (k < candidates.count) {
      const int32_t width = candidates.first_width + k;
      mine = {width, v % 2 == 0 ? 0 : snap_tolerance(width, w), grid_max_work[v], grid_cuts[v]};
    }
    const GridScore best = best_grid(mine);
    if (v == 0) {
      chosen_width = best.width;
      chosen_snap = best.snap;
    }
  }
  __syncthreads();

  // The chosen grid's boundaries B_0..B_P (the parts beyond it are empty, at the total).
  const int32_t width = chosen_width, snap = chosen_snap;
  for (int32_t q = threadIdx.x; q <= num_parts; q += kPlanThreads) {
    const int32_t pos =
        static_cast<int32_t>(snap_boundary(grid_point(cost_line, batch, width, q), fixed, snap).pos);
    bounds[q] = pos;
    part_begin[q] = pos;
  }
  __syncthreads();  // every boundary is visible

  // Requests of each part, from its interval on the cost line.
  for (int32_t p = threadIdx.x; p < num_parts; p += kPlanThreads) {
    const RequestSpan span = part_requests(cost_line, batch, fixed, bounds[p], bounds[p + 1]);
    plan[layout.part_req_begin() + p] = span.first;
    plan[layout.part_req_end() + p] = span.last;
  }

  // Part spans of the requests; partial slots and the split-request list in request order.
  int64_t split_carry = 0;
  for (int32_t base = 0; base < batch; base += kPlanThreads) {
    const int32_t i = base + threadIdx.x;
    int32_t splits = 0;
    if (i < batch) {
      const int64_t start = cost_line[i], cost = cost_line[i + 1] - start;
      const int32_t first = part_at(bounds, num_parts, first_owned_position(start, cost, fixed));
      const int32_t last = part_at(bounds, num_parts, start + cost - 1);
      splits = last - first + 1;
      first_part[i] = first;
      num_splits[i] = splits;
      if (splits > 1) atomicMax(&max_splits, splits);
    }
    const bool split = splits > 1;
    const int64_t mine = split ? (int64_t{1} << kSplitCountShift) | splits : 0;
    int64_t chunk_total;
    const int64_t before = split_carry + block_exclusive_scan(mine, chunk_total);
    if (i < batch) {
      slot_offset[i] = static_cast<int32_t>(before & kSlotMask);
      if (split) {
        const auto j = before >> kSplitCountShift;
        split_requests[j] = i;
        plan[layout.split_states() + j] = splits;
        plan[layout.split_slots() + j] = static_cast<int32_t>(before & kSlotMask);
      }
    }
    split_carry += chunk_total;
  }
  const int32_t split_count = static_cast<int32_t>(split_carry >> kSplitCountShift);
  for (int32_t j = split_count + threadIdx.x; j < num_parts; j += kPlanThreads) {
    split_requests[j] = -1;
    plan[layout.split_states() + j] = 0;
    plan[layout.split_slots() + j] = 0;
  }

  __syncthreads();  // max_splits is complete
  if (threadIdx.x == 0) {
    const PlanHeader header{batch, num_parts, w, fixed, split_count, total, max_splits, 0};
    const int32_t* words = reinterpret_cast<const int32_t*>(&header);
    for (int k = 0; k < static_cast<int>(sizeof(PlanHeader) / sizeof(int32_t)); ++k) plan[k] = words[k];
  }
}

// --- Small batches --------------------------------------------------------------------------------------

// CTA sizes of small_plan_kernel: 256 threads up to b = 256 (the common decode batch), 512 up to b = 512.
constexpr int kSmallPlanThreads = 256;
constexpr int kMediumPlanThreads = 512;
// Scoring: warp m holds grid points 31m .. 31m + 31 of every candidate grid; lane l scores the part
// [point l, point l + 1), whose end the next lane holds (one shuffle), and the last lane only lends its
// point. So the kernel takes P ≤ 31 · warps.
constexpr int kScoredPartsPerWarp = kWarpSize - 1;
// Candidate widths one thread searches in lockstep: four independent shared loads per search step.
constexpr int kWidthsPerPass = 4;
// Padding of the cost line in shared memory beyond C_b: above every position, so that the search needs no
// bound check.
constexpr int32_t kPastTheLine = 0x7fffffff;
// The split scan carries split requests above this bit and partial slots below (slots ≤ 2(P − 1) < 2^16,
// split requests ≤ b ≤ 512: one 32-bit word).
constexpr int kSmallSplitCountShift = 16;
constexpr int32_t kSmallSlotMask = (1 << kSmallSplitCountShift) - 1;

template <int kThreads>
bool small_plan_fits(int32_t batch, PlanParams params) {
  constexpr int32_t kMostParts = kThreads / kWarpSize * kScoredPartsPerWarp;
  static_assert(2 * (kMostParts - 1) <= kSmallSlotMask && kThreads < (1 << (31 - kSmallSplitCountShift)),
                "the split scan's two counters fit one word");
  // F ≥ 1 makes every request cost at least one position (part_at_grid takes positions ≥ 0).
  return batch >= 1 && batch <= kThreads && params.num_parts >= 1 && params.num_parts <= kMostParts &&
         params.fixed_cost >= 1;
}

// The last i with line[i] ≤ pos[u], for kWidthsPerPass positions at once (binary lifting from `top`, the
// largest power of two ≤ batch, over the cost line padded with kPastTheLine up to 2·top entries: the same i
// as plan.hpp request_at for 0 ≤ pos < total).
template <int kCount>
__device__ void search_line(const int32_t* line, int32_t top, const int32_t (&pos)[kCount],
                            int32_t (&found)[kCount]) {
#pragma unroll
  for (int u = 0; u < kCount; ++u) found[u] = 0;
  for (int32_t step = top; step > 0; step >>= 1) {
#pragma unroll
    for (int u = 0; u < kCount; ++u) found[u] += line[found[u] + step] <= pos[u] ? step : 0;
  }
}

// One thread per request (cost scan, the request's parts, split scan) and per part (its boundary and
// requests); five CTA barriers in all. Positions are int32: the cost line is below 2^31 (api/validate.cpp).
template <int kThreads>
__global__ void __launch_bounds__(kThreads, 1)
    small_plan_kernel(const int32_t* __restrict__ seqlens,  // [batch], batch ≤ kThreads
                      int32_t batch, int32_t page_size, int32_t max_pages, PlanParams params,
                      int32_t* plan) {  // PlanLayout words
  // The decode kernel, launched next as a programmatic dependent, may become resident now: it waits for this
  // grid's completion (griddepcontrol.wait) before it reads the plan.
  hopper::launch_dependents();
  constexpr int kWarps = kThreads / kWarpSize;
  static_assert(kThreads <= (1 << 16), "point_request holds request indices in 16 bits");
  __shared__ int32_t line[2 * kThreads];                            // C_0 .. C_b, then kPastTheLine
  __shared__ int32_t bounds[kThreads];                              // B_0 .. B_P (P < kThreads)
  __shared__ uint16_t point_request[kMaxGridCandidates][kThreads];  // the request holding each grid point
  __shared__ int32_t warp_max_work[kWarps][kGridVariants], warp_cuts[kWarps][kGridVariants];
  __shared__ int32_t warp_sums[kWarps], warp_max_splits[kWarps];
  const int t = threadIdx.x, lane = t % kWarpSize, warp = t / kWarpSize;
  const PlanLayout layout{batch, params.num_parts};
  const int32_t fixed = params.fixed_cost;
  const int32_t num_parts = params.num_parts;

  // C_t: exclusive prefix of cost_i = pages_i + F.
  const int32_t cost = t < batch ? request_blocks(seqlens[t], page_size, max_pages) + fixed : 0;
  const int32_t cost_inclusive = warp_inclusive_scan(cost, lane);
  if (lane == kWarpSize - 1) warp_sums[warp] = cost_inclusive;
  __syncthreads();  // 1: warp sums
  int32_t start = cost_inclusive - cost, total = 0;
#pragma unroll
  for (int m = 0; m < kWarps; ++m) {
    const int32_t sum = warp_sums[m];
    start += m < warp ? sum : 0;
    total += sum;
  }
  line[t] = t < batch ? start : t == batch ? total : kPastTheLine;
  line[kThreads + t] = kThreads + t == batch ? total : kPastTheLine;
  if (t < batch) plan[layout.cost_prefix() + t] = start;
  if (t == 0) plan[layout.cost_prefix() + batch] = total;
  const int32_t w = work_per_part(total, num_parts, params.min_work);
  const GridCandidates candidates = grid_candidates(w);
  const int32_t scoring_warps = ceil_quotient(grid_parts(total, w), kScoredPartsPerWarp);
  const int32_t top = 1 << (31 - __clz(batch));
  __syncthreads();  // 2: the cost line

  // Score every candidate grid, unsnapped and snapped: per warp, the maximum work and the cuts of its parts.
  if (warp < scoring_warps) {
    const int32_t q = warp * kScoredPartsPerWarp + lane;  // this lane's grid point
    for (int32_t k0 = 0; k0 < candidates.count; k0 += kWidthsPerPass) {
      int32_t nominal[kWidthsPerPass], request[kWidthsPerPass];
#pragma unroll
      for (int u = 0; u < kWidthsPerPass; ++u)
        nominal[u] = static_cast<int32_t>(nominal_boundary(total, w + k0 + u, q));
      search_line(line, top, nominal, request);
#pragma unroll
      for (int u = 0; u < kWidthsPerPass; ++u) {
        const int32_t k = k0 + u;
        if (k >= candidates.count) break;
        const int32_t width = w + k;
        point_request[k][q] = static_cast<uint16_t>(request[u]);
        const GridPointOf<int32_t> point =
            grid_point_of(nominal[u], total, line[request[u]], line[request[u] + 1]);
        const bool in_grid = lane < kScoredPartsPerWarp && nominal[u] < total;  // part q of this grid exists
        const int32_t snaps[2] = {0, snap_tolerance(width, w)};
#pragma unroll
        for (int v = 0; v < 2; ++v) {
          const BoundaryOf<int32_t> begin = snap_boundary(point, fixed, snaps[v]);
          const int32_t end = __shfl_down_sync(kFullWarpMask, begin.pos, 1);
          const int32_t work = in_grid ? end - begin.pos + (begin.at_request ? 0 : fixed) : 0;
          const int32_t max_work = __reduce_max_sync(kFullWarpMask, work);
          const int32_t cuts = static_cast<int32_t>(__reduce_add_sync(kFullWarpMask, in_grid && begin.cut));
          if (lane == 0) {
            warp_max_work[warp][2 * k + v] = max_work;
            warp_cuts[warp][2 * k + v] = cuts;
          }
        }
      }
    }
  }
  __syncthreads();  // 3: the warps' scores and the grid points' requests

  // Every warp picks the same grid (better_grid is a strict order): lane v holds variant v.
  GridScore mine{0, 0, 0, 0};
  if (lane / 2 < candidates.count) {
    const int32_t width = w + lane / 2;
    int32_t max_work = 0, cuts = 0;
#pragma unroll
    for (int m = 0; m < kWarps; ++m) {
      if (m < scoring_warps) {
        max_work = max(max_work, warp_max_work[m][lane]);
        cuts += warp_cuts[m][lane];
      }
    }
    mine = {width, lane % 2 == 0 ? 0 : snap_tolerance(width, w), max_work, cuts};
  }
  const GridScore best = best_grid(mine);

  // B_t, the chosen grid's boundary t (the parts beyond it are empty, at the total).
  int32_t begin = 0;
  if (t <= num_parts) {
    const int32_t nominal = static_cast<int32_t>(nominal_boundary(total, best.width, t));
    const int32_t j = nominal > 0 && nominal < total ? point_request[best.width - w][t] : 0;
    begin = snap_boundary(grid_point_of(nominal, total, line[j], line[j + 1]), fixed, best.snap).pos;
    bounds[t] = begin;
    plan[layout.part_begin() + t] = begin;
  }
  __syncthreads();  // 4: every boundary

  // Requests of part t, from its interval on the cost line.
  if (t < num_parts) {
    const int32_t end = bounds[t + 1];
    RequestSpan span{0, -1};
    if (begin < end) {
      const int32_t ends[2] = {begin, end - 1};
      int32_t holders[2];
      search_line(line, top, ends, holders);
      span = request_span(line, fixed, holders[0], holders[1], end);
    }
    plan[layout.part_req_begin() + t] = span.first;
    plan[layout.part_req_end() + t] = span.last;
  }

  // Parts of request t; partial slots and the split-request list in request order.
  int32_t splits = 0;
  if (t < batch) {
    const int32_t first =
        part_at_grid(bounds, best.width, static_cast<int32_t>(first_owned_position(start, cost, fixed)));
    const int32_t last = part_at_grid(bounds, best.width, start + cost - 1);
    splits = last - first + 1;
    plan[layout.first_part() + t] = first;
    plan[layout.num_splits() + t] = splits;
  }
  const bool split = splits > 1;
  const int32_t counters = split ? (1 << kSmallSplitCountShift) | splits : 0;
  const int32_t counters_inclusive = warp_inclusive_scan(counters, lane);
  const int32_t warp_splits = __reduce_max_sync(kFullWarpMask, splits);
  if (lane == kWarpSize - 1) warp_sums[warp] = counters_inclusive;
  if (lane == 0) warp_max_splits[warp] = warp_splits;
  __syncthreads();  // 5: warp sums (warp_sums was last read before barrier 2)
  int32_t before = counters_inclusive - counters, all = 0, max_splits = 1;
#pragma unroll
  for (int m = 0; m < kWarps; ++m) {
    const int32_t sum = warp_sums[m];
    before += m < warp ? sum : 0;
    all += sum;
    max_splits = max(max_splits, warp_max_splits[m]);
  }
  if (t < batch) {
    plan[layout.slot_offset() + t] = before & kSmallSlotMask;
    if (split) {
      const int32_t j = before >> kSmallSplitCountShift;
      plan[layout.split_requests() + j] = t;
      plan[layout.split_states() + j] = splits;
      plan[layout.split_slots() + j] = before & kSmallSlotMask;
    }
  }
  const int32_t split_count = all >> kSmallSplitCountShift;
  if (t < num_parts && t >= split_count) {
    plan[layout.split_requests() + t] = -1;
    plan[layout.split_states() + t] = 0;
    plan[layout.split_slots() + t] = 0;
  }
  if (t == 0) {
    const PlanHeader header{batch, num_parts, w, fixed, split_count, total, max_splits, 0};
    const int32_t* words = reinterpret_cast<const int32_t*>(&header);
#pragma unroll
    for (int k = 0; k < static_cast<int>(sizeof(PlanHeader) / sizeof(int32_t)); ++k) plan[k] = words[k];
  }
}

}  // namespace

cudaError_t launch_plan(const DecodeArgs& args, int32_t* plan, PlanParams params, cudaStream_t stream) {
  const DecodeProblem& problem = args.problem;
  if (small_plan_fits<kSmallPlanThreads>(problem.batch, params))
    small_plan_kernel<kSmallPlanThreads><<<1, kSmallPlanThreads, 0, stream>>>(
        args.seqlens, problem.batch, problem.page_size, problem.max_pages_per_seq, params, plan);
  else if (small_plan_fits<kMediumPlanThreads>(problem.batch, params))
    small_plan_kernel<kMediumPlanThreads><<<1, kMediumPlanThreads, 0, stream>>>(
        args.seqlens, problem.batch, problem.page_size, problem.max_pages_per_seq, params, plan);
  else
    plan_kernel<<<1, kPlanThreads, 0, stream>>>(args.seqlens, problem.batch, problem.page_size,
                                                problem.max_pages_per_seq, params, plan);
  return cudaGetLastError();
}

}  // namespace etap::decoding
