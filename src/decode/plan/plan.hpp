// Split-KV schedule: a pure policy, compiled for host and device from this one source.
//
// Every request i is a run of positions on one "cost line": first kFixed(F) positions for its fixed cost
// (Q load, epilogue, combine), then one position per KV block of kBlockTokens = 64 tokens (whatever the
// cache's page size; "page" below means such a block). Request i starts at the prefix sum C_i of
// the costs before it. Part p (one CTA) owns the positions [B_p, B_{p+1}) (the plan's part_begin array;
// B_0 = 0, B_P = total):
//   - the boundaries form a grid of width W' ∈ [W, W + T], W = ⌈total/P⌉ (at least min_work) and
//     T = boundary_tolerance(W): nominal boundary q at min(q·W', total), either all left there or each
//     moved to the nearest request boundary C_j that is at most snap_tolerance() positions away; the
//     ⌈total/W'⌉ ≤ P parts are followed by empty ones (B_p = total);
//   - the grid is one that cuts no request if there is one, else the one whose busiest part has the least
//     work (better_grid): the plain p·W split unless another is as good for the busiest part and cuts less.
//     A batch of equal requests slightly longer than W thus runs one request per part instead of cutting
//     every one of them in two;
//   - part p touches request i iff p ∈ [first_part_i, last_part_i]: the parts holding its first and last
//     page positions (an empty request is owned by the part holding its last fixed-cost position,
//     C_i + F − 1, so that no owned cost spills past a part's end);
//   - its pages of request i are those whose positions fall in its interval.
// Hence every page is covered exactly once, a part does at most W + T + F units of work, at most P parts
// are used, and requests split over s ≥ 2 parts use Σ s ≤ 2(P − 1) partial-result slots in total (each of
// the P − 1 inner boundaries cuts at most one request, and each split request holds one of them).
#pragma once

#include <cstdint>
#include <type_traits>

#include "common/constants.hpp"
#include "common/host_device.hpp"

namespace etap::decoding {

// Layout of the plan buffer (int32 words), written by the plan kernel, read by decode and combine.
struct PlanHeader {
  int32_t batch;
  int32_t num_parts;           // P: CTAs of the decode grid
  int32_t work_per_part;       // W = ⌈total / P⌉ (at least PlanParams::min_work): the width parts aim at
  int32_t fixed_cost;          // F
  int32_t num_split_requests;  // requests with num_splits > 1
  int32_t total_cost;
  int32_t max_splits;  // most splits of one request (1 when none is split): picks the combine's path
  int32_t reserved;
};
static_assert(sizeof(PlanHeader) == 32);

// A plan buffer describes the launch reading it when its header names the same batch and part count:
// then every request, part and slot index in it is in range for that launch's buffers (the plan kernel's
// invariants). Decode and combine do nothing with any other plan (one made for another problem or
// another device), so a wrong buffer can give a wrong result but never an out-of-bounds access; checked
// mode reports it (decode/checked).
ETAP_HD bool plan_matches(const PlanHeader& header, int32_t batch, int32_t num_parts) {
  return header.batch == batch && header.num_parts == num_parts;
}

// Offsets (in int32 words) of the arrays that follow the header.
struct PlanLayout {
  int32_t batch, num_parts;
  ETAP_HD int64_t part_req_begin() const { return 8; }  // [P] first request touched
  ETAP_HD int64_t part_req_end() const {
    return part_req_begin() + num_parts;
  }  // [P] last request (inclusive); < begin: idle part
  ETAP_HD int64_t part_begin() const {
    return part_req_end() + num_parts;
  }  // [P + 1] B_p: first cost-line position of part p; B_P = total
  ETAP_HD int64_t cost_prefix() const { return part_begin() + num_parts + 1; }  // [batch + 1] C_i
  ETAP_HD int64_t first_part() const { return cost_prefix() + batch + 1; }      // [batch]
  ETAP_HD int64_t num_splits() const { return first_part() + batch; }           // [batch]
  ETAP_HD int64_t slot_offset() const {
    return num_splits() + batch;
  }  // [batch] first partial slot (split requests only)
  // [P] ids of split requests, −1 past them.
  ETAP_HD int64_t split_requests() const { return slot_offset() + batch; }
  // The split request's num_splits and slot_offset again (0 past the list), so that the combine reads all it
  // needs of one split request in one round trip after the header.
  ETAP_HD int64_t split_states() const { return split_requests() + num_parts; }  // [P]
  ETAP_HD int64_t split_slots() const { return split_states() + num_parts; }     // [P]
  ETAP_HD int64_t words() const { return split_slots() + num_parts; }
  ETAP_HD int64_t bytes() const { return words() * 4; }
};

// Parts and fixed cost for a problem whose requests have `num_tiles` row tiles (row_tiles.hpp; every tile
// runs the same plan in its own CTA) on `num_sms` SMs.
struct PlanParams {
  int32_t num_parts;
  int32_t fixed_cost;
  int32_t min_work = 1;  // lower bound on W: fewer, larger splits for short total work
};

// Upper bound on parts (and so on the splits of one request, which the combine kernel holds in smem).
inline constexpr int32_t kMaxParts = 1024;

// F, the per-segment overhead in page units (Q load, epilogue, partial result), per kernel. The transposed
// kernel: 1, the smallest value the empty-request ownership rule allows (H200, docs/PERF.md v6: 2 + R/32
// left parts unbalanced at R = 64, 8K, 82.5 → 76.3 µs with less; 2026-12-02c run 6: at R = 16, b=16 8K,
// F 1/2/4/8 within 2 µs of each other, 8 the slowest). The rows-on-M kernel (full 64-row tiles): a segment
// there costs 16–23 µs more than its blocks (2026-12-02c run 2), so a part that starts a second request
// must get fewer blocks. F = 8, the best of 1/2/4/8 measured (run 6, b=16 8K): h_q 64 100.7 → 77.6 µs,
// h_q 128 141.7 → 117.6 µs; larger values are not measured yet.
inline constexpr int32_t kFixedCost = 1;
inline constexpr int32_t kRowsFixedCost = 8;
// Floor of W: keeps one-page splits and a 128-way combine away from b = 1 (docs/PERF.md v6, H200, 8K:
// 21.9 → 19.9 µs).
inline constexpr int32_t kMinWork = 2;

ETAP_HD PlanParams plan_params(int32_t num_sms, int32_t num_tiles, int32_t fixed_cost = kFixedCost) {
  int32_t parts = num_sms / (num_tiles > 0 ? num_tiles : 1);
  if (parts < 1) parts = 1;
  if (parts > kMaxParts) parts = kMaxParts;
  return {parts, fixed_cost, kMinWork};
}

// F for the kernel the problem runs on (decode/launch/kernel_choice.hpp runs_rows_kernel).
ETAP_HD int32_t fixed_cost_for(bool rows_kernel) {
  return rows_kernel ? kRowsFixedCost : kFixedCost;
}

// Tokens of a request the kernel reads: seqlen clamped to [0, max_pages · page_size] (checked mode reports
// violations).
ETAP_HD int64_t request_tokens(int32_t seqlen, int32_t page_size, int32_t max_pages) {
  if (seqlen <= 0) return 0;
  const int64_t capacity = static_cast<int64_t>(max_pages) * page_size;
  return seqlen < capacity ? seqlen : capacity;
}

// KV blocks of kBlockTokens tokens of a request (the planner's unit of work).
ETAP_HD int32_t request_blocks(int32_t seqlen, int32_t page_size, int32_t max_pages) {
  return static_cast<int32_t>((request_tokens(seqlen, page_size, max_pages) + kBlockTokens - 1) /
                              kBlockTokens);
}

// ⌈a / b⌉ for a ≥ 0, b ≥ 1 (row_tiles.hpp ceil_div is the int32 a + b − 1 form), in the unsigned type of a's
// width: the plan kernel passes int32 positions (the cost line is below 2^31, api/validate.cpp) and gets a
// 32-bit division (~20 instructions on the GPU against ~70 and a call for a 64-bit one); the host twin passes
// int64. No a + b − 1 that could wrap.
template <typename Pos>
ETAP_HD Pos ceil_quotient(Pos a, int32_t b) {
  using Unsigned = std::make_unsigned_t<Pos>;
  const Unsigned q = static_cast<Unsigned>(a) / static_cast<Unsigned>(b);
  return static_cast<Pos>(q + (q * static_cast<Unsigned>(b) != static_cast<Unsigned>(a) ? 1 : 0));
}

template <typename Pos>
ETAP_HD int32_t work_per_part(Pos total_cost, int32_t num_parts, int32_t min_work = 1) {
  const Pos w = ceil_quotient(total_cost, num_parts);
  const int32_t floor = min_work < 1 ? 1 : min_work;
  return w < floor ? floor : static_cast<int32_t>(w);
}

// --- Part boundaries -------------------------------------------------------------------------------------

// T, how far (in positions) a part may grow beyond W so that no request is cut: W / 32 rounded, about 3%.
// That covers one request per part at b = 128 with 4K (65 positions on W = 64: T = 2) and 8K (129 on
// W = 126: T = 4) and two per part at b = 256, 4K (130 on 127: T = 4), and stays below what splitting
// costs there: 256 partial states (8 MB of fp32 written and read back), a combine over 2048 rows and a
// second epilogue in every CTA, ~7% of the b = 128, 4K call by the analysis in docs/PERF.md "Gaps". 0 below
// W = 16: there parts are a few latency-bound pages, where one page more is no small fraction.
inline constexpr int32_t kBoundaryToleranceDivisor = 32;
// Most grid widths compared, each unsnapped and snapped (one warp of the plan kernel picks the best of the
// 32 variants): all T + 1 of them up to W = 495, the widest dropped beyond.
inline constexpr int32_t kMaxGridCandidates = 16;

ETAP_HD int32_t boundary_tolerance(int32_t w) {
  return (w + kBoundaryToleranceDivisor / 2) / kBoundaryToleranceDivisor;
}

// The grids considered: widths first_width = W, W + 1, ..., W + count − 1 ≤ W + T. The grid of width W'
// has ⌈total/W'⌉ ≤ P parts; the grid of width W is the plain p·W split.
struct GridCandidates {
  int32_t first_width, count;
};

ETAP_HD GridCandidates grid_candidates(int32_t w) {
  const int32_t count = boundary_tolerance(w) + 1;
  return {w, count < kMaxGridCandidates ? count : kMaxGridCandidates};
}

template <typename Pos>
ETAP_HD int32_t grid_parts(Pos total, int32_t width) {
  return static_cast<int32_t>(ceil_quotient(total, width));
}

// S: how far a boundary of the grid of width `width` may move to a request boundary. Both neighbours may
// move outwards, so 2S ≤ W + T − width keeps every interval within W + T, and 2S < width keeps the inner
// boundaries strictly increasing.
ETAP_HD int32_t snap_tolerance(int32_t width, int32_t w) {
  const int32_t room = w + boundary_tolerance(w) - width;
  const int32_t apart = width - 1;
  const int32_t s = (room < apart ? room : apart) / 2;
  return s < 0 ? 0 : s;
}

// Nominal boundary q ≥ 0 of the grid of width `width`: q·width, at most the total.
ETAP_HD int64_t nominal_boundary(int64_t total, int32_t width, int32_t q) {
  const int64_t n = static_cast<int64_t>(q) * width;
  return n < total ? n : total;
}

// The request holding position `pos` (0 ≤ pos < prefix[batch]): the last i with prefix[i] ≤ pos.
ETAP_HD int32_t request_at(const int32_t* prefix, int32_t batch, int64_t pos) {
  int32_t lo = 0, hi = batch;  // prefix[lo] ≤ pos < prefix[hi]
  while (hi - lo > 1) {
    const int32_t mid = lo + (hi - lo) / 2;
    if (prefix[mid] <= pos)
      lo = mid;
    else
      hi = mid;
  }
  return lo;
}

// Nominal boundary q of a grid and the request [c_lo, c_hi) holding it (c_lo = c_hi at 0 and at the total).
// Positions are int64 on the host and int32 in the plan kernel (the cost line is below 2^31).
template <typename Pos>
struct GridPointOf {
  Pos nominal, c_lo, c_hi;
};
using GridPoint = GridPointOf<int64_t>;

// The grid point at nominal position n ∈ [0, total], given the request [c_lo, c_hi) holding n when
// 0 < n < total (the values passed otherwise are ignored).
template <typename Pos>
ETAP_HD GridPointOf<Pos> grid_point_of(Pos n, Pos total, Pos c_lo, Pos c_hi) {
  if (n <= 0) return {0, 0, 0};
  if (n >= total) return {total, total, total};
  return {n, c_lo, c_hi};
}

// By binary search over the cost prefix [batch + 1] (the general plan kernel's method; its small-batch
// kernel searches a padded copy in shared memory, the host twin walks instead).
ETAP_HD GridPoint grid_point(const int32_t* prefix, int32_t batch, int32_t width, int32_t q) {
  const int64_t total = prefix[batch];
  const int64_t n = nominal_boundary(total, width, q);
  if (n <= 0 || n >= total) return grid_point_of<int64_t>(n, total, 0, 0);
  const int32_t j = request_at(prefix, batch, n);
  return grid_point_of<int64_t>(n, total, prefix[j], prefix[j + 1]);
}

// A part boundary at position `pos`.
template <typename Pos>
struct BoundaryOf {
  Pos pos;
  bool at_request;  // pos is a request boundary (C_j): the part starting there pays no continuation F
  bool cut;         // pos lies strictly between two pages of one request: that request is split here
};
using Boundary = BoundaryOf<int64_t>;

// The grid point, moved to the nearer end of its request when that is at most `snap` positions away (the
// earlier one on a tie).
template <typename Pos>
ETAP_HD BoundaryOf<Pos> snap_boundary(GridPointOf<Pos> g, int32_t fixed, int32_t snap) {
  Pos pos = g.nominal;
  if (g.nominal - g.c_lo <= snap && g.nominal - g.c_lo <= g.c_hi - g.nominal)
    pos = g.c_lo;
  else if (g.c_hi - g.nominal <= snap)
    pos = g.c_hi;
  return {pos, pos == g.c_lo || pos == g.c_hi, g.c_lo + fixed < pos && pos < g.c_hi};
}

// A grid variant (width, snap: 0 or snap_tolerance) and what it is judged by: the most work of one part
// (its interval, plus F when it does not start at a request boundary: a bound on Σ (pages + F) over its
// segments) and its cuts (inner boundaries that split a request). Each grid is scored unsnapped and
// snapped: moving a boundary onto a request boundary removes a cut but may lengthen the busiest part.
struct GridScore {
  int32_t width, snap, max_work, cuts;
};

// Whether grid a is better than grid b. First, a grid that cuts no request: then no partial is written, the
// combine has nothing to do and every CTA runs one epilogue per request — that is what T is spent on. Then
// the busiest part's work (the cost line's own measure, F included), then fewer cuts (fewer partial states
// for the combine), then the narrower grid (more parts), then no snapping (a strict order: the choice is
// unique). Without a grid that avoids every cut, the busiest part is never worse than the plain W grid's.
ETAP_HD bool better_grid(GridScore a, GridScore b) {
  if ((a.cuts == 0) != (b.cuts == 0)) return a.cuts == 0;
  if (a.max_work != b.max_work) return a.max_work < b.max_work;
  if (a.cuts != b.cuts) return a.cuts < b.cuts;
  if (a.width != b.width) return a.width < b.width;
  return a.snap < b.snap;
}

// --- Requests and parts ---------------------------------------------------------------------------------

// The positions that decide a request's parts: its first page (its last fixed position when it has no page)
// and its last position. Request i starts at `start` and costs `cost` = pages + F ≥ 1.
ETAP_HD int64_t first_owned_position(int64_t start, int64_t cost, int32_t fixed) {
  return start + fixed < start + cost - 1 ? start + fixed : start + cost - 1;
}

// The part holding position `pos` (0 ≤ pos < total) under boundaries part_begin[num_parts + 1]: the last p
// with part_begin[p] ≤ pos.
ETAP_HD int32_t part_at(const int32_t* part_begin, int32_t num_parts, int64_t pos) {
  int32_t lo = 0, hi = num_parts;  // part_begin[lo] ≤ pos < part_begin[hi]
  while (hi - lo > 1) {
    const int32_t mid = lo + (hi - lo) / 2;
    if (part_begin[mid] <= pos)
      lo = mid;
    else
      hi = mid;
  }
  return lo;
}

// The part holding position `pos` (0 ≤ pos < total) when part_begin[0..num_parts] are the boundaries of the
// grid of width `width` with snap S ≤ (width − 1)/2 (snap_tolerance, or 0): the same answer as part_at, from
// the grid's structure instead of a search. With p0 = ⌊pos/width⌋, the answer is p0 − 1, p0 or p0 + 1:
//   - every boundary q below the grid's part count is within S of q·width (snap_boundary moves a nominal
//     boundary by at most S), every later one is at the total, and the boundaries never decrease;
//   - B_{p0−1} ≤ (p0 − 1)·width + S < p0·width ≤ pos, so the answer is at least p0 − 1, and it is p0 − 1
//     exactly when B_{p0} > pos (for p0 = 0, B_0 = 0 ≤ pos);
//   - B_{p0+2} ≥ min(total, (p0 + 2)·width − S) > (p0 + 1)·width > pos, so the answer is at most p0 + 1, and
//     it is p0 + 1 exactly when B_{p0+1} ≤ pos;
//   - p0 ≤ ⌊(total − 1)/width⌋ < the grid's part count ≤ num_parts, so B_{p0+1} is in the array.
// One 32-bit division and two independent loads instead of ⌈log2 num_parts⌉ dependent ones.
ETAP_HD int32_t part_at_grid(const int32_t* part_begin, int32_t width, int32_t pos) {
  const int32_t p0 = static_cast<int32_t>(static_cast<uint32_t>(pos) / static_cast<uint32_t>(width));
  return p0 - (part_begin[p0] > pos ? 1 : 0) + (part_begin[p0 + 1] <= pos ? 1 : 0);
}

// The requests [first, last] a part of positions [begin, end) touches (last < first: none), from the cost
// prefix: the request holding `begin`, through the one holding end − 1 unless that one's first owned
// position lies beyond the part.
struct RequestSpan {
  int32_t first, last;
};

// The same, given the requests holding `begin` (first) and end − 1 (last) for a part with begin < end.
ETAP_HD RequestSpan request_span(const int32_t* prefix, int32_t fixed, int32_t first, int32_t last,
                                 int64_t end) {
  if (first_owned_position(prefix[last], prefix[last + 1] - prefix[last], fixed) >= end) --last;
  return last < first ? RequestSpan{0, -1} : RequestSpan{first, last};
}

ETAP_HD RequestSpan part_requests(const int32_t* prefix, int32_t batch, int32_t fixed, int64_t begin,
                                  int64_t end) {
  if (begin >= end) return {0, -1};
  return request_span(prefix, fixed, request_at(prefix, batch, begin), request_at(prefix, batch, end - 1),
                      end);
}

// The pages [begin, end) of a request that the part of positions [part_begin, part_end) processes.
struct PageRange {
  int32_t begin, end;
};

ETAP_HD PageRange part_pages(int64_t part_begin, int64_t part_end, int64_t start, int32_t pages,
                             int32_t fixed) {
  const int64_t first_page_pos = start + fixed;
  int64_t b = part_begin - first_page_pos;
  int64_t e = part_end - first_page_pos;
  if (b < 0) b = 0;
  if (e > pages) e = pages;
  if (e < b) e = b;
  return {static_cast<int32_t>(b), static_cast<int32_t>(e)};
}

}  // namespace etap::decoding
