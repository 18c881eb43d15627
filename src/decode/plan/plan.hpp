// Split-KV schedule: a pure policy, compiled for host and device from this one source.
//
// Every request i is a run of positions on one "cost line": first kFixed(F) positions for its fixed cost
// (Q load, epilogue, combine), then one position per KV block of kBlockTokens = 64 tokens (whatever the
// cache's page size; "page" below means such a block). Request i starts at the prefix sum C_i of
// the costs before it. Part p (one CTA) owns the positions [p·W, (p+1)·W), W = ceil(total / P).
//   - part p touches request i iff p ∈ [first_part_i, last_part_i] (an empty request is owned by the part
//     holding its last fixed-cost position, C_i + F − 1, so that no owned cost spills past a part's end);
//   - its pages of request i are those whose positions fall in its interval.
// Hence every page is covered exactly once, a part does at most W + F units of work, at most P parts are
// used, and requests split over s ≥ 2 parts use Σ s ≤ 2(P − 1) partial-result slots in total.
#pragma once

#include <cstdint>

#include "common/constants.hpp"
#include "common/host_device.hpp"

namespace etap::decoding {

// Layout of the plan buffer (int32 words), written by the plan kernel, read by decode and combine.
struct PlanHeader {
  int32_t batch;
  int32_t num_parts;           // P: CTAs of the decode grid
  int32_t work_per_part;       // W
  int32_t fixed_cost;          // F
  int32_t num_split_requests;  // requests with num_splits > 1
  int32_t total_cost;
  int32_t max_splits;  // most splits of one request (1 when none is split): picks the combine's path
  int32_t reserved;
};
static_assert(sizeof(PlanHeader) == 32);

// Offsets (in int32 words) of the arrays that follow the header.
struct PlanLayout {
  int32_t batch, num_parts;
  ETAP_HD int64_t part_req_begin() const { return 8; }  // [P] first request touched
  ETAP_HD int64_t part_req_end() const {
    return part_req_begin() + num_parts;
  }  // [P] last request (inclusive); < begin: idle part
  ETAP_HD int64_t cost_prefix() const { return part_req_end() + num_parts; }  // [batch + 1] C_i
  ETAP_HD int64_t first_part() const { return cost_prefix() + batch + 1; }    // [batch]
  ETAP_HD int64_t num_splits() const { return first_part() + batch; }         // [batch]
  ETAP_HD int64_t slot_offset() const {
    return num_splits() + batch;
  }  // [batch] first partial slot (split requests only)
  ETAP_HD int64_t split_requests() const { return slot_offset() + batch; }  // [P] ids of split requests
  ETAP_HD int64_t words() const { return split_requests() + num_parts; }
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

// F, the per-segment overhead in page units (Q load, epilogue, partial result). Measured on an H200
// (docs/PERF.md v6): 2 + R/32 left parts unbalanced at R = 64, 8K (82.5 → 76.3 µs with less); 1 is the
// smallest value the empty-request ownership rule allows.
inline constexpr int32_t kFixedCost = 1;
// Floor of W: keeps one-page splits and a 128-way combine away from b = 1 (docs/PERF.md v6, H200, 8K:
// 21.9 → 19.9 µs).
inline constexpr int32_t kMinWork = 2;

ETAP_HD PlanParams plan_params(int32_t num_sms, int32_t num_tiles) {
  int32_t parts = num_sms / (num_tiles > 0 ? num_tiles : 1);
  if (parts < 1) parts = 1;
  if (parts > kMaxParts) parts = kMaxParts;
  return {parts, kFixedCost, kMinWork};
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
  return static_cast<int32_t>((request_tokens(seqlen, page_size, max_pages) + kBlockTokens - 1) / kBlockTokens);
}

ETAP_HD int32_t work_per_part(int64_t total_cost, int32_t num_parts, int32_t min_work = 1) {
  const int64_t w = (total_cost + num_parts - 1) / num_parts;
  const int64_t floor = min_work < 1 ? 1 : min_work;
  return w < floor ? static_cast<int32_t>(floor) : static_cast<int32_t>(w);
}

// Parts [first, last] touching a request that starts at position `start` and has `pages` pages.
struct PartSpan {
  int32_t first, last;
};

ETAP_HD PartSpan request_parts(int64_t start, int32_t pages, int32_t fixed, int32_t w) {
  if (pages == 0) {
    const int32_t owner = static_cast<int32_t>((start + fixed - 1) / w);
    return {owner, owner};
  }
  const int64_t first_page_pos = start + fixed;
  return {static_cast<int32_t>(first_page_pos / w), static_cast<int32_t>((first_page_pos + pages - 1) / w)};
}

// The pages [begin, end) of a request that part p processes (p within the request's PartSpan).
struct PageRange {
  int32_t begin, end;
};

ETAP_HD PageRange part_pages(int32_t part, int64_t start, int32_t pages, int32_t fixed, int32_t w) {
  const int64_t first_page_pos = start + fixed;
  int64_t b = static_cast<int64_t>(part) * w - first_page_pos;
  int64_t e = static_cast<int64_t>(part + 1) * w - first_page_pos;
  if (b < 0) b = 0;
  if (e > pages) e = pages;
  if (e < b) e = b;
  return {static_cast<int32_t>(b), static_cast<int32_t>(e)};
}

}  // namespace etap::decoding
