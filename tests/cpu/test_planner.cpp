// The split-KV planner (plan.hpp) through its host twin: coverage, balance and slot invariants on fixed and
// random schedules.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <random>
#include <utility>
#include <vector>

#include "decode/launch/launch.hpp"
#include "decode/plan/plan.hpp"
#include "decode/plan/row_tiles.hpp"
#include "testing/plan_host.hpp"

namespace etap::decoding {
namespace {

using testing::build_plan_host;
using testing::part_segments;
using testing::PartSegment;

constexpr int32_t kPageSize = 64;
constexpr int32_t kNoClamp = 1 << 20;  // max_pages large enough not to clamp
constexpr int32_t kH100Sms = 132;

PlanHeader header_of(const std::vector<int32_t>& plan) {
  PlanHeader header;
  std::memcpy(&header, plan.data(), sizeof(header));
  return header;
}

std::vector<int32_t> make_plan(const std::vector<int32_t>& seqlens, PlanParams params,
                               int32_t max_pages = kNoClamp) {
  return build_plan_host(seqlens.data(), static_cast<int32_t>(seqlens.size()), kPageSize, max_pages, params);
}

void expect_kernel_method_matches(const std::vector<int32_t>& plan);

// Every invariant plan.hpp promises, checked by enumerating all parts' segments.
void check_invariants(const std::vector<int32_t>& seqlens, PlanParams params, int32_t max_pages = kNoClamp) {
  const auto batch = static_cast<int32_t>(seqlens.size());
  const std::vector<int32_t> plan = make_plan(seqlens, params, max_pages);
  const PlanLayout layout{batch, params.num_parts};
  ASSERT_EQ(static_cast<int64_t>(plan.size()), layout.words());
  const PlanHeader h = header_of(plan);
  const int32_t fixed = params.fixed_cost;

  std::vector<int32_t> pages(batch);
  int64_t total = 0;
  for (int32_t i = 0; i < batch; ++i) {
    pages[i] = request_blocks(seqlens[i], kPageSize, max_pages);
    ASSERT_EQ(plan[layout.cost_prefix() + i], total) << "cost prefix of request " << i;
    total += pages[i] + fixed;
  }
  ASSERT_EQ(h.batch, batch);
  ASSERT_EQ(h.num_parts, params.num_parts);
  ASSERT_EQ(h.fixed_cost, fixed);
  ASSERT_EQ(h.total_cost, total);
  ASSERT_EQ(plan[layout.cost_prefix() + batch], total);
  ASSERT_EQ(h.work_per_part, work_per_part(total, params.num_parts, params.min_work));
  const int32_t w = h.work_per_part;
  const int32_t tolerance = boundary_tolerance(w);
  EXPECT_GE(w, params.min_work);
  EXPECT_GE(int64_t{w} * params.num_parts, total) << "the parts must cover the whole cost line";

  // Part boundaries: from 0 to the total, non-decreasing; the parts in use form a prefix of the grid, each
  // interval non-empty and at most W + T long.
  const int32_t* bounds = plan.data() + layout.part_begin();
  ASSERT_EQ(bounds[0], 0);
  ASSERT_EQ(bounds[params.num_parts], total);
  bool reached_total = false;
  for (int32_t p = 0; p < params.num_parts; ++p) {
    ASSERT_LE(bounds[p], bounds[p + 1]) << "part " << p;
    if (reached_total) {
      ASSERT_EQ(bounds[p], total) << "empty parts come last; part " << p;
      continue;
    }
    EXPECT_LT(bounds[p], bounds[p + 1]) << "part " << p;
    EXPECT_LE(bounds[p + 1] - bounds[p], int64_t{w} + tolerance) << "part " << p;
    reached_total = bounds[p + 1] == total;
  }
  std::vector<bool> request_boundary(static_cast<std::size_t>(total) + 1, false);
  for (int32_t i = 0; i <= batch; ++i) request_boundary[plan[layout.cost_prefix() + i]] = true;

  // Coverage: every page of every request exactly once, every request (empty ones too) in one or more parts,
  // its segments in consecutive parts with consecutive split indices and consecutive page ranges.
  std::vector<std::vector<int32_t>> covered(batch);
  for (int32_t i = 0; i < batch; ++i) covered[i].assign(pages[i], 0);
  std::vector<int32_t> segments_seen(batch, 0), next_page(batch, 0);
  for (int32_t p = 0; p < params.num_parts; ++p) {
    int64_t work = 0;
    const std::vector<PartSegment> segments = part_segments(plan, p);
    if (segments.empty()) {
      EXPECT_EQ(plan[layout.part_req_begin() + p], 0) << "idle part " << p;
      EXPECT_EQ(plan[layout.part_req_end() + p], -1) << "idle part " << p;
    }
    for (const PartSegment& s : segments) {
      const int32_t i = s.request;
      ASSERT_GE(i, 0);
      ASSERT_LT(i, batch);
      EXPECT_EQ(s.num_splits, plan[layout.num_splits() + i]);
      EXPECT_EQ(s.split_index, segments_seen[i]) << "request " << i << " in part " << p;
      EXPECT_EQ(p, plan[layout.first_part() + i] + s.split_index);
      EXPECT_EQ(s.page_begin, next_page[i]) << "request " << i << " in part " << p;
      if (pages[i] > 0) {
        EXPECT_LT(s.page_begin, s.page_end) << "request " << i << " idle in part " << p;
      }
      for (int32_t page = s.page_begin; page < s.page_end; ++page) ++covered[i][page];
      next_page[i] = s.page_end;
      ++segments_seen[i];
      work += s.page_end - s.page_begin + fixed;
    }
    // The bound the grid choice uses: the interval, plus F unless the part starts at a request boundary.
    const int64_t interval = bounds[p + 1] - bounds[p];
    if (!segments.empty()) {
      EXPECT_LE(work, interval + (request_boundary[bounds[p]] ? 0 : fixed)) << "part " << p;
    }
    EXPECT_LE(work, int64_t{w} + tolerance + fixed) << "part " << p;
  }
  int64_t slots = 0;
  int32_t max_splits = 1;
  std::vector<int32_t> split_list;
  for (int32_t i = 0; i < batch; ++i) {
    const int32_t splits = plan[layout.num_splits() + i];
    EXPECT_EQ(segments_seen[i], splits) << "request " << i;
    EXPECT_EQ(next_page[i], pages[i]) << "request " << i;
    for (int32_t page = 0; page < pages[i]; ++page)
      ASSERT_EQ(covered[i][page], 1) << "request " << i << " page " << page;
    EXPECT_EQ(plan[layout.slot_offset() + i], slots) << "request " << i;
    // Ownership: the parts holding the first page position (an empty request: its last fixed-cost
    // position) and the last position.
    const int64_t owned = plan[layout.cost_prefix() + i] + (pages[i] == 0 ? fixed - 1 : fixed);
    const int32_t first = plan[layout.first_part() + i];
    EXPECT_LE(bounds[first], owned) << "request " << i;
    EXPECT_GT(bounds[first + 1], owned) << "request " << i;
    if (pages[i] == 0) {
      EXPECT_EQ(splits, 1) << "empty request " << i;
    }
    if (splits > 1) {
      slots += splits;
      split_list.push_back(i);
      max_splits = std::max(max_splits, splits);
    }
  }
  EXPECT_LE(slots, 2 * int64_t{params.num_parts - 1});
  EXPECT_LE(slots, (WorkspaceLayout{2 * int64_t{params.num_parts}, 1, 1}.slots));
  ASSERT_EQ(h.num_split_requests, static_cast<int32_t>(split_list.size()));
  for (int32_t k = 0; k < params.num_parts; ++k) {
    const int32_t expected = k < h.num_split_requests ? split_list[k] : -1;
    EXPECT_EQ(plan[layout.split_requests() + k], expected) << "split_requests[" << k << "]";
    // The combine's copies of the split request's splits and first slot (0 past the list).
    EXPECT_EQ(plan[layout.split_states() + k], expected < 0 ? 0 : plan[layout.num_splits() + expected])
        << "split_states[" << k << "]";
    EXPECT_EQ(plan[layout.split_slots() + k], expected < 0 ? 0 : plan[layout.slot_offset() + expected])
        << "split_slots[" << k << "]";
  }
  EXPECT_EQ(h.max_splits, max_splits);
  EXPECT_EQ(plan[7], 0);
  expect_kernel_method_matches(plan);
}

// The plan kernel's method, step by step on the host: grids scored through plan.hpp's binary searches
// (grid_point), each part's requests from its interval (part_requests), each request's parts by search over
// the boundaries (part_at). The host twin walks instead; both must give the same words.
void expect_kernel_method_matches(const std::vector<int32_t>& plan) {
  const PlanHeader h = header_of(plan);
  const PlanLayout layout{h.batch, h.num_parts};
  const int32_t* prefix = plan.data() + layout.cost_prefix();
  const int32_t fixed = h.fixed_cost;
  const GridCandidates candidates = grid_candidates(h.work_per_part);
  ASSERT_GE(candidates.count, 1);
  ASSERT_LE(candidates.count, kMaxGridCandidates);
  ASSERT_EQ(candidates.first_width, h.work_per_part);
  GridScore best{};
  for (int32_t k = 0; k < candidates.count; ++k) {
    const int32_t width = candidates.first_width + k;
    const int32_t parts = grid_parts(h.total_cost, width);
    ASSERT_LE(parts, h.num_parts);
    EXPECT_LE(width, h.work_per_part + boundary_tolerance(h.work_per_part));
    for (const int32_t snap : {0, snap_tolerance(width, h.work_per_part)}) {
      GridScore score{width, snap, 0, 0};
      for (int32_t p = 0; p < parts; ++p) {
        const Boundary begin = snap_boundary(grid_point(prefix, h.batch, width, p), fixed, snap);
        const Boundary end = snap_boundary(grid_point(prefix, h.batch, width, p + 1), fixed, snap);
        ASSERT_LE(begin.pos, end.pos) << "width " << width << " snap " << snap << " part " << p;
        score.max_work = std::max(score.max_work,
                                  static_cast<int32_t>(end.pos - begin.pos) + (begin.at_request ? 0 : fixed));
        if (begin.cut) ++score.cuts;
      }
      if (best.width == 0 || better_grid(score, best)) best = score;
    }
  }
  const int32_t* bounds = plan.data() + layout.part_begin();
  for (int32_t q = 0; q <= h.num_parts; ++q) {
    const int64_t expected = snap_boundary(grid_point(prefix, h.batch, best.width, q), fixed, best.snap).pos;
    ASSERT_EQ(bounds[q], expected) << "boundary " << q;
  }
  for (int32_t p = 0; p < h.num_parts; ++p) {
    const RequestSpan span = part_requests(prefix, h.batch, fixed, bounds[p], bounds[p + 1]);
    EXPECT_EQ(span.first, plan[layout.part_req_begin() + p]) << "part " << p;
    EXPECT_EQ(span.last, plan[layout.part_req_end() + p]) << "part " << p;
  }
  for (int32_t i = 0; i < h.batch; ++i) {
    const int64_t start = prefix[i], cost = prefix[i + 1] - prefix[i];
    const int32_t first = part_at(bounds, h.num_parts, first_owned_position(start, cost, fixed));
    const int32_t last = part_at(bounds, h.num_parts, start + cost - 1);
    EXPECT_EQ(first, plan[layout.first_part() + i]) << "request " << i;
    EXPECT_EQ(last - first + 1, plan[layout.num_splits() + i]) << "request " << i;
    // The small-batch kernel's method: the same parts from the chosen grid's structure (F ≥ 1 there).
    if (fixed >= 1) {
      EXPECT_EQ(
          part_at_grid(bounds, best.width, static_cast<int32_t>(first_owned_position(start, cost, fixed))),
          first)
          << "request " << i;
      EXPECT_EQ(part_at_grid(bounds, best.width, static_cast<int32_t>(start + cost - 1)), last)
          << "request " << i;
    }
  }
  // ... and its 32-bit grid points and boundaries.
  for (int32_t q = 0; q <= h.num_parts; ++q) {
    const GridPoint g = grid_point(prefix, h.batch, best.width, q);
    const GridPointOf<int32_t> narrow{static_cast<int32_t>(g.nominal), static_cast<int32_t>(g.c_lo),
                                      static_cast<int32_t>(g.c_hi)};
    const BoundaryOf<int32_t> b32 = snap_boundary(narrow, fixed, best.snap);
    const Boundary b64 = snap_boundary(g, fixed, best.snap);
    EXPECT_EQ(b32.pos, b64.pos) << "boundary " << q;
    EXPECT_EQ(b32.at_request, b64.at_request) << "boundary " << q;
    EXPECT_EQ(b32.cut, b64.cut) << "boundary " << q;
  }
}

int32_t parts_used(const std::vector<int32_t>& plan) {
  const PlanHeader h = header_of(plan);
  int32_t used = 0;
  for (int32_t p = 0; p < h.num_parts; ++p) used += part_segments(plan, p).empty() ? 0 : 1;
  return used;
}

TEST(PlanParams, PartsFromSmsAndRowTiles) {
  EXPECT_EQ(plan_params(132, 1).num_parts, 132);
  EXPECT_EQ(plan_params(132, 2).num_parts, 66);
  EXPECT_EQ(plan_params(132, 3).num_parts, 44);
  EXPECT_EQ(plan_params(132, 32).num_parts, 4);
  EXPECT_EQ(plan_params(1, 4).num_parts, 1);
  EXPECT_EQ(plan_params(132, 200).num_parts, 1);
}

TEST(RowTiles, TilesCoverEveryRowOnceWithRectanglesOfAtMost64Rows) {
  struct Shape {
    int32_t s_q, h_q, h_kv, tiles, n;
  };
  for (const Shape c :
       {Shape{1, 16, 1, 1, 16}, Shape{4, 16, 1, 1, 64}, Shape{1, 64, 1, 1, 64}, Shape{1, 128, 1, 2, 64},
        Shape{2, 128, 1, 4, 64}, Shape{16, 128, 1, 32, 64}, Shape{5, 16, 1, 2, 48}, Shape{3, 40, 1, 3, 40},
        Shape{1, 96, 1, 2, 48}, Shape{2, 16, 2, 2, 16}, Shape{1, 8, 8, 8, 1}, Shape{16, 16, 1, 4, 64},
        Shape{3, 1, 1, 1, 3}, Shape{1, 100, 1, 2, 50}}) {
    SCOPED_TRACE(::testing::Message() << "s_q " << c.s_q << " h_q " << c.h_q << " h_kv " << c.h_kv);
    const RowTiling t = row_tiling(c.s_q, c.h_q, c.h_kv);
    EXPECT_EQ(t.num_tiles, c.tiles);
    EXPECT_EQ(t.tile_rows(), c.n);
    EXPECT_LE(t.tile_rows(), kMaxTileRows);
    std::vector<int> seen(static_cast<std::size_t>(c.s_q) * c.h_q, 0);
    for (int32_t y = 0; y < t.num_tiles; ++y) {
      const RowTile tile = row_tile(t, c.s_q, y);
      EXPECT_GE(tile.tokens, 1);
      EXPECT_GE(tile.heads, 1);
      for (int32_t s = tile.token0; s < tile.token0 + tile.tokens; ++s)
        for (int32_t h = tile.head0; h < tile.head0 + tile.heads; ++h) {
          EXPECT_EQ(h / t.heads_per_kv, tile.kv_head) << "a tile stays within its KV head's heads";
          ++seen.at(static_cast<std::size_t>(s) * c.h_q + h);
        }
    }
    for (std::size_t r = 0; r < seen.size(); ++r) EXPECT_EQ(seen[r], 1) << "row " << r;
  }
}

// The tuned values themselves are measurements (plan.hpp); what the planner relies on is tested here.
TEST(PlanParams, UseTheNamedConstantsWithinTheirBounds) {
  static_assert(kFixedCost >= 1, "the empty-request ownership rule needs F >= 1");
  static_assert(kMinWork >= 1, "W >= 1 keeps every part's interval non-empty");
  for (const int32_t tiles : {1, 2, 7, 32}) {
    const PlanParams params = plan_params(kH100Sms, tiles);
    EXPECT_EQ(params.fixed_cost, kFixedCost) << "tiles " << tiles;
    EXPECT_EQ(params.min_work, kMinWork) << "tiles " << tiles;
  }
}

TEST(PlanPolicy, RequestBlocksCountsTokensIn64TokenBlocksForAnyPageSize) {
  EXPECT_EQ(request_blocks(65, 1, 1000), 2);
  EXPECT_EQ(request_blocks(65, 1, 10), 1);     // 10 one-token pages hold 10 tokens
  EXPECT_EQ(request_blocks(300, 16, 10), 3);   // 160 tokens
  EXPECT_EQ(request_blocks(300, 256, 10), 5);  // 300 tokens fit
  EXPECT_EQ(request_blocks(2147483647, 256, 1 << 30), 33554432);
  EXPECT_EQ(request_tokens(300, 16, 10), 160);
  EXPECT_EQ(request_tokens(-1, 16, 10), 0);
}

TEST(PlanPolicy, RequestPagesRoundsUpAndClamps) {
  EXPECT_EQ(request_blocks(0, 64, 10), 0);
  EXPECT_EQ(request_blocks(-3, 64, 10), 0);
  EXPECT_EQ(request_blocks(1, 64, 10), 1);
  EXPECT_EQ(request_blocks(64, 64, 10), 1);
  EXPECT_EQ(request_blocks(65, 64, 10), 2);
  EXPECT_EQ(request_blocks(100000, 64, 10), 10);
  EXPECT_EQ(request_blocks(2147483647, 64, 1 << 30), 33554432);
}

// part_at_grid (the small-batch plan kernel's lookup) against the search part_at, at every position of random
// cost lines, for every candidate width unsnapped and snapped at its tolerance.
TEST(PlanPolicy, PartAtGridMatchesTheSearchOnEveryPosition) {
  std::mt19937 rng(17);
  for (int trial = 0; trial < 200; ++trial) {
    const int32_t batch = std::uniform_int_distribution<int32_t>(1, 40)(rng);
    const int32_t fixed = std::uniform_int_distribution<int32_t>(1, 8)(rng);
    const int32_t num_parts = std::uniform_int_distribution<int32_t>(1, 40)(rng);
    const int32_t longest = trial % 2 == 0 ? 30 : 600;
    std::vector<int32_t> prefix(static_cast<std::size_t>(batch) + 1, 0);
    for (int32_t i = 0; i < batch; ++i)
      prefix[i + 1] = prefix[i] + fixed + std::uniform_int_distribution<int32_t>(0, longest)(rng);
    const int32_t total = prefix[batch];
    const int32_t w = work_per_part(total, num_parts, kMinWork);
    const GridCandidates candidates = grid_candidates(w);
    for (int32_t k = 0; k < candidates.count; ++k) {
      const int32_t width = candidates.first_width + k;
      if (grid_parts(total, width) > num_parts) continue;
      for (const int32_t snap : {0, snap_tolerance(width, w)}) {
        std::vector<int32_t> bounds(static_cast<std::size_t>(num_parts) + 1);
        for (int32_t q = 0; q <= num_parts; ++q)
          bounds[q] = static_cast<int32_t>(
              snap_boundary(grid_point(prefix.data(), batch, width, q), fixed, snap).pos);
        for (int32_t pos = 0; pos < total; ++pos)
          ASSERT_EQ(part_at_grid(bounds.data(), width, pos), part_at(bounds.data(), num_parts, pos))
              << "trial " << trial << " width " << width << " snap " << snap << " pos " << pos;
      }
    }
  }
}

TEST(PlanPolicy, CeilQuotientIsExactAtTheTopOfTheRange) {
  EXPECT_EQ(ceil_quotient(int32_t{0x7fffffff}, 1), 0x7fffffff);
  EXPECT_EQ(ceil_quotient(int32_t{0x7fffffff}, 0x7fffffff), 1);
  EXPECT_EQ(ceil_quotient(int32_t{0x7ffffffe}, 0x7fffffff), 1);
  EXPECT_EQ(grid_parts(int32_t{0x7fffffff}, 0x40000000), 2);
  EXPECT_EQ(work_per_part(int32_t{0x7fffffff}, 1024), 0x200000);
  EXPECT_EQ(work_per_part(int64_t{0x7fffffff}, 1024), 0x200000);
  EXPECT_EQ(ceil_quotient(int32_t{7}, 3), 3);
  EXPECT_EQ(ceil_quotient(int32_t{6}, 3), 2);
}

TEST(PlanPolicy, WorkPerPartIsAtLeastOne) {
  EXPECT_EQ(work_per_part(0, 132), 1);
  EXPECT_EQ(work_per_part(1, 132), 1);
  EXPECT_EQ(work_per_part(133, 132), 2);
  EXPECT_EQ(work_per_part(264, 132), 2);
}

TEST(PlanLayoutTest, WordsMatchTheDocumentedArrays) {
  const PlanLayout layout{10, 132};
  EXPECT_EQ(layout.part_req_begin(), 8);
  EXPECT_EQ(layout.part_begin(), 8 + 132 + 132);
  EXPECT_EQ(layout.words(), 8 + 132 + 132 + 133 + 11 + 10 + 10 + 10 + 3 * 132);
  EXPECT_EQ(layout.bytes(), layout.words() * 4);
}

TEST(Planner, OnePageRequestIsNotSplit) {
  const std::vector<int32_t> plan = make_plan({64}, {kH100Sms, 2});
  check_invariants({64}, {kH100Sms, 2});
  EXPECT_EQ(plan[(PlanLayout{1, kH100Sms}.num_splits())], 1);
  EXPECT_EQ(header_of(plan).num_split_requests, 0);
}

TEST(Planner, OneMillionTokensSpreadOverAllParts) {
  const std::vector<int32_t> seqlens = {1 << 20};
  check_invariants(seqlens, {kH100Sms, 2});
  const std::vector<int32_t> plan = make_plan(seqlens, {kH100Sms, 2});
  EXPECT_EQ(parts_used(plan), kH100Sms);
  EXPECT_EQ(plan[(PlanLayout{1, kH100Sms}.num_splits())], kH100Sms);
  // Every part but the last gets W pages (the first W − F: it also pays the fixed cost).
  const int32_t w = header_of(plan).work_per_part;
  for (int32_t p = 1; p + 1 < kH100Sms; ++p) {
    const PartSegment s = part_segments(plan, p).at(0);
    EXPECT_EQ(s.page_end - s.page_begin, w) << "part " << p;
  }
}

TEST(Planner, LongRequestWithRowTilesOfMtp) {
  const PlanParams params = plan_params(kH100Sms, 1);
  check_invariants({200000, 3, 70000}, params);
}

TEST(Planner, Batch4096ShortRequests) {
  std::vector<int32_t> seqlens(4096);
  std::mt19937 rng(4096);
  for (auto& s : seqlens) s = std::uniform_int_distribution<int32_t>(1, 512)(rng);
  check_invariants(seqlens, {kH100Sms, 2});
  EXPECT_EQ(parts_used(make_plan(seqlens, {kH100Sms, 2})), kH100Sms);
}

TEST(Planner, AllZeroLengthRequestsOwnedOnce) {
  check_invariants(std::vector<int32_t>(300, 0), {kH100Sms, 2});
  check_invariants(std::vector<int32_t>(1, 0), {kH100Sms, 2});
}

TEST(Planner, PaddedBatchWithZeroLengthTail) {
  std::vector<int32_t> seqlens = {5000, 64, 1};
  seqlens.resize(64, 0);
  check_invariants(seqlens, {kH100Sms, 2});
}

TEST(Planner, EmptyRequestOwnedByThePartHoldingItsLastFixedPosition) {
  // F = 2, costs [3, 2, 3] on 2 parts of W = 4 (T = 0): the boundary at 4 falls between the empty request's
  // two fixed positions 3 and 4, so it belongs to part 1, which holds position 4. Owned from its first
  // position, part 0 would pay F for it with only one of its positions in its interval.
  const PlanParams params{2, 2};
  const std::vector<int32_t> plan = make_plan({64, 0, 64}, params);
  const PlanLayout layout{3, 2};
  ASSERT_EQ(header_of(plan).work_per_part, 4);
  ASSERT_EQ(plan[layout.part_begin() + 1], 4);
  EXPECT_EQ(plan[layout.first_part() + 1], 1);
  EXPECT_EQ(plan[layout.num_splits() + 1], 1);
  check_invariants({64, 0, 64}, params);
}

TEST(Planner, SeqlensClampedToTheBlockTable) {
  const int32_t max_pages = 4;
  const std::vector<int32_t> seqlens = {1 << 30, -1, 4 * kPageSize + 1, 10};
  check_invariants(seqlens, {8, 2}, max_pages);
  const std::vector<int32_t> plan = make_plan(seqlens, {8, 2}, max_pages);
  EXPECT_EQ(header_of(plan).total_cost, (4 + 2) + (0 + 2) + (4 + 2) + (1 + 2));
}

TEST(Planner, OnePartTakesEverything) {
  const std::vector<int32_t> seqlens = {7000, 0, 300, 64};
  check_invariants(seqlens, {1, 2});
  const std::vector<int32_t> plan = make_plan(seqlens, {1, 2});
  const std::vector<PartSegment> segments = part_segments(plan, 0);
  ASSERT_EQ(segments.size(), seqlens.size());
  for (const PartSegment& s : segments) EXPECT_EQ(s.num_splits, 1);
}

TEST(Planner, MorePartsThanWork) {
  check_invariants({64}, {kH100Sms, 2});
  const std::vector<int32_t> plan = make_plan({64}, {kH100Sms, 2});
  EXPECT_EQ(parts_used(plan), 1);
}

TEST(Planner, SplitRequestsListedInRequestOrder) {
  const std::vector<int32_t> seqlens = {100000, 64, 300000, 0, 50000};
  check_invariants(seqlens, {16, 2});
  const std::vector<int32_t> plan = make_plan(seqlens, {16, 2});
  const PlanLayout layout{5, 16};
  EXPECT_EQ(header_of(plan).num_split_requests, 3);
  EXPECT_EQ(plan[layout.split_requests() + 0], 0);
  EXPECT_EQ(plan[layout.split_requests() + 1], 2);
  EXPECT_EQ(plan[layout.split_requests() + 2], 4);
}

TEST(Planner, DeterministicAcrossCalls) {
  const std::vector<int32_t> seqlens = {1234, 0, 99999, 17};
  EXPECT_EQ(make_plan(seqlens, {kH100Sms, 3}), make_plan(seqlens, {kH100Sms, 3}));
}

TEST(PartSegments, RejectsAPartOutOfRange) {
  const std::vector<int32_t> plan = make_plan({100}, {4, 2});
  EXPECT_THROW(part_segments(plan, 4), std::invalid_argument);
  EXPECT_THROW(part_segments(plan, -1), std::invalid_argument);
}

int32_t split_request_count(const std::vector<int32_t>& plan) {
  return header_of(plan).num_split_requests;
}

// Issue 9, large batch: 128 requests of 64 pages cost 65 positions each on W = ⌈8320/132⌉ = 64; the grid of
// 128 parts (65 = W + 1 ≤ W + T) puts one whole request on each part instead of splitting every one.
TEST(PlannerBoundaries, Batch128Of64PagesIsNotSplit) {
  const std::vector<int32_t> seqlens(128, 64 * kPageSize);
  const PlanParams params = plan_params(kH100Sms, 1);
  check_invariants(seqlens, params);
  const std::vector<int32_t> plan = make_plan(seqlens, params);
  const PlanLayout layout{128, kH100Sms};
  EXPECT_EQ(header_of(plan).work_per_part, 64);
  EXPECT_EQ(split_request_count(plan), 0);
  EXPECT_EQ(header_of(plan).max_splits, 1);
  EXPECT_EQ(parts_used(plan), 128);
  for (int32_t p = 0; p < 128; ++p) {
    EXPECT_EQ(plan[layout.part_req_begin() + p], p);
    EXPECT_EQ(plan[layout.part_req_end() + p], p);
    EXPECT_EQ(plan[layout.part_begin() + p], 65 * p);
  }
}

TEST(PlannerBoundaries, OtherBatchesOfEqualRequestsJustAboveW) {
  // b = 128, 8K: 129 positions on W = 126 (T = 4); b = 256, 4K: two requests (130) on W = 127 (T = 4);
  // b = 264: two on W = 130; b = 127: 65 on W = 63 (T = 2); b = 130, 132: W = 65 itself.
  for (const auto& [batch, seqlen] : std::vector<std::pair<int32_t, int32_t>>{
           {128, 8192}, {256, 4096}, {264, 4096}, {128, 4096 - 5}, {127, 4096}, {130, 4096}, {132, 4096}}) {
    SCOPED_TRACE(::testing::Message() << "batch " << batch << ", seqlen " << seqlen);
    const std::vector<int32_t> seqlens(batch, seqlen);
    check_invariants(seqlens, {kH100Sms, 1, 2});
    EXPECT_EQ(split_request_count(make_plan(seqlens, {kH100Sms, 1, 2})), 0);
  }
}

// b = 1: every grid cuts the request, so the narrowest, the plain W grid, wins: ⌈total/W⌉ parts (all 132 at
// 1M tokens; 129 at 32K, where W = ⌈513/132⌉ = 4).
TEST(PlannerBoundaries, SingleLongRequestStillSpreadsOverEveryPart) {
  for (const int32_t seqlen : {1 << 20, 200000, 65536, 32768, 8192}) {
    SCOPED_TRACE(::testing::Message() << "seqlen " << seqlen);
    const std::vector<int32_t> plan = make_plan({seqlen}, {kH100Sms, 1, 2});
    check_invariants({seqlen}, {kH100Sms, 1, 2});
    const PlanHeader h = header_of(plan);
    const int32_t filled = grid_parts(h.total_cost, h.work_per_part);
    EXPECT_EQ(plan[(PlanLayout{1, kH100Sms}.num_splits())], filled);
    EXPECT_EQ(parts_used(plan), filled);
    for (int32_t p = 0; p <= filled; ++p)
      EXPECT_EQ(plan[(PlanLayout{1, kH100Sms}.part_begin() + p)],
                std::min(p * h.work_per_part, h.total_cost));
  }
  EXPECT_EQ(parts_used(make_plan({1 << 20}, {kH100Sms, 1, 2})), kH100Sms);
}

// Where no grid within T avoids a cut, the busiest part decides and the schedule stays the W grid: b = 16,
// 8K (the headline case) keeps exactly the boundaries p·W of the earlier planner.
TEST(PlannerBoundaries, Batch16Of8KKeepsTheWGrid) {
  const std::vector<int32_t> seqlens(16, 8192);
  const std::vector<int32_t> plan = make_plan(seqlens, {kH100Sms, 1, 2});
  check_invariants(seqlens, {kH100Sms, 1, 2});
  const PlanLayout layout{16, kH100Sms};
  const int32_t w = header_of(plan).work_per_part;
  ASSERT_EQ(w, 16);
  for (int32_t p = 0; p <= kH100Sms; ++p)
    EXPECT_EQ(plan[layout.part_begin() + p], std::min(p * w, header_of(plan).total_cost)) << "boundary " << p;
}

TEST(PlannerBoundaries, ToleranceIsWOver32Rounded) {
  EXPECT_EQ(boundary_tolerance(2), 0);
  EXPECT_EQ(boundary_tolerance(15), 0);
  EXPECT_EQ(boundary_tolerance(16), 1);
  EXPECT_EQ(boundary_tolerance(32), 1);
  EXPECT_EQ(boundary_tolerance(64), 2);
  EXPECT_EQ(boundary_tolerance(126), 4);
  for (int32_t w = 1; w < 5000; ++w)
    EXPECT_LE(std::abs(kBoundaryToleranceDivisor * boundary_tolerance(w) - w), 16);
}

TEST(PlannerBoundaries, SnapKeepsIntervalsWithinToleranceAndBoundariesApart) {
  for (int32_t w = 1; w < 3000; ++w) {
    const GridCandidates c = grid_candidates(w);
    EXPECT_EQ(c.first_width, w);
    EXPECT_EQ(c.count, std::min(boundary_tolerance(w) + 1, kMaxGridCandidates));
    for (int32_t width = w; width < w + c.count; ++width) {
      const int32_t snap = snap_tolerance(width, w);
      EXPECT_GE(snap, 0);
      EXPECT_LE(width + 2 * snap, w + boundary_tolerance(w)) << "W " << w << " width " << width;
      EXPECT_LT(2 * snap, width) << "W " << w << " width " << width;
    }
  }
}

int32_t busiest_part(const std::vector<int32_t>& plan) {
  const PlanHeader h = header_of(plan);
  int32_t busiest = 0;
  for (int32_t p = 0; p < h.num_parts; ++p) {
    int32_t work = 0;
    for (const PartSegment& s : part_segments(plan, p)) work += s.page_end - s.page_begin + h.fixed_cost;
    busiest = std::max(busiest, work);
  }
  return busiest;
}

TEST(PlannerBoundaries, WiderGridTakenWhenItRemovesEveryCut) {
  // Costs [65, 63] on 2 parts: W = 64, T = 2. The grid of width 65 puts its boundary on the request
  // boundary: no split, and the busiest part does 65, as on the W grid.
  const std::vector<int32_t> seqlens = {64 * kPageSize, 62 * kPageSize};
  check_invariants(seqlens, {2, 1, 2});
  const std::vector<int32_t> plan = make_plan(seqlens, {2, 1, 2});
  EXPECT_EQ(plan[(PlanLayout{2, 2}.part_begin() + 1)], 65);
  EXPECT_EQ(split_request_count(plan), 0);
  EXPECT_EQ(busiest_part(plan), 65);
}

TEST(PlannerBoundaries, SnapTakenWhenItRemovesEveryCut) {
  // Costs [65, 63, 64] on 3 parts: W = 64, T = 2, snap 1 on the W grid. No width aligns both boundaries,
  // but moving 64 to 65 (128 is one already) cuts nothing.
  const std::vector<int32_t> seqlens = {64 * kPageSize, 62 * kPageSize, 63 * kPageSize};
  check_invariants(seqlens, {3, 1, 2});
  const std::vector<int32_t> plan = make_plan(seqlens, {3, 1, 2});
  const PlanLayout layout{3, 3};
  EXPECT_EQ(plan[layout.part_begin() + 1], 65);
  EXPECT_EQ(plan[layout.part_begin() + 2], 128);
  EXPECT_EQ(split_request_count(plan), 0);
  EXPECT_EQ(busiest_part(plan), 65);
}

TEST(PlannerBoundaries, SnapDroppedWhenItWouldLoadTheBusiestPart) {
  // Costs [30, 99, 63] on 3 parts: W = 64, T = 2, snap 1. Both inner boundaries cut request 1; moving 128 to
  // 129 would remove one cut but give part 1 65 pages + F = 66, so the grid stays unsnapped (busiest: 65).
  const std::vector<int32_t> seqlens = {29 * kPageSize, 98 * kPageSize, 62 * kPageSize};
  check_invariants(seqlens, {3, 1, 2});
  const std::vector<int32_t> plan = make_plan(seqlens, {3, 1, 2});
  const PlanLayout layout{3, 3};
  EXPECT_EQ(plan[layout.part_begin() + 1], 64);
  EXPECT_EQ(plan[layout.part_begin() + 2], 128);
  EXPECT_EQ(plan[layout.num_splits() + 1], 3);
  EXPECT_EQ(busiest_part(plan), 65);
}

// Batches of equal requests of any length and count, on any SM count: the grids that avoid every cut are
// found where they exist within T, and the invariants hold throughout.
TEST(PlannerProperty, EqualRequestBatches) {
  std::mt19937 rng(9);
  for (int c = 0; c < 400; ++c) {
    const int32_t batch = std::uniform_int_distribution<int32_t>(1, 600)(rng);
    const int32_t sms = std::uniform_int_distribution<int32_t>(1, 300)(rng);
    const int32_t seqlen = std::uniform_int_distribution<int32_t>(0, 40000)(rng);
    SCOPED_TRACE(::testing::Message()
                 << "case " << c << ": batch " << batch << " × " << seqlen << ", sms " << sms);
    const std::vector<int32_t> seqlens(batch, seqlen);
    const PlanParams params = plan_params(sms, 1);
    check_invariants(seqlens, params);
    // A whole number of requests per part, between W and W + T positions, needs no split.
    const std::vector<int32_t> plan = make_plan(seqlens, params);
    const PlanHeader h = header_of(plan);
    const int32_t cost = request_blocks(seqlen, kPageSize, kNoClamp) + params.fixed_cost;
    const int32_t aligned_width = (h.work_per_part + cost - 1) / cost * cost;
    if (aligned_width <= h.work_per_part + boundary_tolerance(h.work_per_part) &&
        aligned_width - h.work_per_part < kMaxGridCandidates) {
      EXPECT_EQ(h.num_split_requests, 0) << "width " << aligned_width;
    }
    if (::testing::Test::HasFatalFailure() || ::testing::Test::HasNonfatalFailure()) return;
  }
}

// Nearly equal requests (a few tokens to a few pages apart), batches around one or two per part: the
// neighbourhood where snapping and the no-cut grids act.
TEST(PlannerProperty, NearlyEqualRequestBatches) {
  std::mt19937 rng(128);
  for (int c = 0; c < 600; ++c) {
    const int32_t sms = std::uniform_int_distribution<int32_t>(1, 264)(rng);
    const int32_t per_part = std::uniform_int_distribution<int32_t>(1, 3)(rng);
    const int32_t batch = std::max(1, sms * per_part - std::uniform_int_distribution<int32_t>(-3, 8)(rng));
    const int32_t base = std::uniform_int_distribution<int32_t>(64, 20000)(rng);
    const int32_t jitter = std::uniform_int_distribution<int32_t>(0, 3 * kPageSize)(rng);
    std::vector<int32_t> seqlens(batch);
    for (auto& v : seqlens) v = base + std::uniform_int_distribution<int32_t>(0, jitter)(rng);
    SCOPED_TRACE(::testing::Message() << "case " << c << ": batch " << batch << ", base " << base << " + "
                                      << jitter << ", sms " << sms);
    check_invariants(seqlens, plan_params(sms, 1));
    if (::testing::Test::HasFatalFailure() || ::testing::Test::HasNonfatalFailure()) return;
  }
}

// Property test: random batches mixing empty, short and long requests, random SM counts and row counts.
TEST(PlannerProperty, RandomSchedulesKeepEveryInvariant) {
  std::mt19937 rng(20240601);
  constexpr int kCases = 1500;
  for (int c = 0; c < kCases; ++c) {
    const int32_t batch = std::uniform_int_distribution<int32_t>(1, 300)(rng);
    const int32_t sms = std::uniform_int_distribution<int32_t>(1, 300)(rng);
    const int32_t rows = std::uniform_int_distribution<int32_t>(1, 64)(rng);
    const int32_t max_pages = std::uniform_int_distribution<int32_t>(1, 3000)(rng);
    const int32_t kind_of_batch = std::uniform_int_distribution<int32_t>(0, 3)(rng);
    std::vector<int32_t> seqlens(batch);
    for (auto& s : seqlens) {
      const int32_t kind = std::uniform_int_distribution<int32_t>(0, 9)(rng);
      if (kind < 2 || kind_of_batch == 0)
        s = std::uniform_int_distribution<int32_t>(0, 2)(rng) == 0 ? 0 : 1;
      else if (kind < 7)
        s = std::uniform_int_distribution<int32_t>(0, 2000)(rng);
      else
        s = std::uniform_int_distribution<int32_t>(0, 200000)(rng);
      if (kind_of_batch == 1 && kind == 9) s = -s;  // invalid lengths are clamped to 0
    }
    SCOPED_TRACE(::testing::Message() << "case " << c << ": batch " << batch << ", sms " << sms << ", rows "
                                      << rows << ", max_pages " << max_pages);
    // Both kernels' F (plan.hpp fixed_cost_for) and, for the bench's --fixed-cost experiments, any F up
    // to 16.
    const int32_t fixed = c % 3 == 0   ? kFixedCost
                          : c % 3 == 1 ? kRowsFixedCost
                                       : std::uniform_int_distribution<int32_t>(1, 16)(rng);
    SCOPED_TRACE(::testing::Message() << "F " << fixed);
    check_invariants(seqlens, plan_params(sms, (rows + 63) / 64, fixed), max_pages);
    if (::testing::Test::HasFatalFailure() || ::testing::Test::HasNonfatalFailure()) return;
  }
}

}  // namespace
}  // namespace etap::decoding
