// The split-KV planner (plan.hpp) through its host twin: coverage, balance and slot invariants on fixed and
// random schedules.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <random>
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
  EXPECT_GE(w, params.min_work);
  EXPECT_GE(int64_t{w} * params.num_parts, total) << "the parts must cover the whole cost line";

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
    EXPECT_LE(work, int64_t{w} + fixed) << "part " << p;
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
    if (pages[i] == 0) {
      EXPECT_EQ(splits, 1) << "empty request " << i;
      // Ownership rule: the part holding the request's last fixed-cost position.
      EXPECT_EQ(plan[layout.first_part() + i], (plan[layout.cost_prefix() + i] + fixed - 1) / w)
          << "empty request " << i;
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
  }
  EXPECT_EQ(h.max_splits, max_splits);
  EXPECT_EQ(plan[7], 0);
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
  for (const Shape c : {Shape{1, 16, 1, 1, 16}, Shape{4, 16, 1, 1, 64}, Shape{1, 64, 1, 1, 64},
                        Shape{1, 128, 1, 2, 64}, Shape{2, 128, 1, 4, 64}, Shape{16, 128, 1, 32, 64},
                        Shape{5, 16, 1, 2, 48}, Shape{3, 40, 1, 3, 40}, Shape{1, 96, 1, 2, 48},
                        Shape{2, 16, 2, 2, 16}, Shape{1, 8, 8, 8, 1}, Shape{16, 16, 1, 4, 64},
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

TEST(PlanPolicy, WorkPerPartIsAtLeastOne) {
  EXPECT_EQ(work_per_part(0, 132), 1);
  EXPECT_EQ(work_per_part(1, 132), 1);
  EXPECT_EQ(work_per_part(133, 132), 2);
  EXPECT_EQ(work_per_part(264, 132), 2);
}

TEST(PlanLayoutTest, WordsMatchTheDocumentedArrays) {
  const PlanLayout layout{10, 132};
  EXPECT_EQ(layout.part_req_begin(), 8);
  EXPECT_EQ(layout.words(), 8 + 132 + 132 + 11 + 10 + 10 + 10 + 132);
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
  // Costs [3, 2] on 3 parts of W = 2: the empty request occupies positions 3 and 4; owning it from its first
  // position would give part 1 five units of work (more than W + F).
  const PlanParams params{3, 2};
  const std::vector<int32_t> plan = make_plan({64, 0}, params);
  ASSERT_EQ(header_of(plan).work_per_part, 2);
  EXPECT_EQ(plan[(PlanLayout{2, 3}.first_part() + 1)], 2);
  check_invariants({64, 0}, params);
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
    check_invariants(seqlens, plan_params(sms, (rows + 63) / 64), max_pages);
    if (::testing::Test::HasFatalFailure() || ::testing::Test::HasNonfatalFailure()) return;
  }
}

}  // namespace
}  // namespace etap::decoding
