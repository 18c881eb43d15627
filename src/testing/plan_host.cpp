// Host twin of src/decode/plan/plan_kernel.cu. It finds the grid boundaries and every request's parts by
// walking forward over requests and parts, and fills part_req_begin/end by a direct min/max over every
// request's part span: different methods from the kernel's binary searches, so that the cross-check means
// something. The policy itself (candidates, snapping, the grid comparison) is plan.hpp's, shared.
#include "testing/plan_host.hpp"

#include <algorithm>
#include <cstring>
#include <limits>
#include <stdexcept>

namespace etap::testing {

using namespace decoding;

namespace {

// The grid points 0..parts of the grid of width `width`. The nominal boundaries increase with q, so the
// request holding each one is found by walking the requests forward (the kernel binary-searches instead).
std::vector<GridPoint> walk_grid(const int32_t* prefix, int32_t batch, int32_t width) {
  const int64_t total = prefix[batch];
  const int32_t parts = grid_parts(total, width);
  std::vector<GridPoint> points(static_cast<std::size_t>(parts) + 1);
  points.front() = {0, 0, 0};
  points.back() = {total, total, total};
  int32_t j = 0;
  for (int32_t q = 1; q < parts; ++q) {
    const int64_t n = nominal_boundary(total, width, q);
    while (prefix[j + 1] <= n) ++j;
    points[q] = {n, prefix[j], prefix[j + 1]};
  }
  return points;
}

GridScore score_grid(const std::vector<GridPoint>& points, int32_t width, int32_t fixed, int32_t snap) {
  GridScore score{width, snap, 0, 0};
  for (std::size_t p = 0; p + 1 < points.size(); ++p) {
    const Boundary begin = snap_boundary(points[p], fixed, snap);
    const Boundary end = snap_boundary(points[p + 1], fixed, snap);
    const int64_t work = end.pos - begin.pos + (begin.at_request ? 0 : fixed);
    score.max_work = std::max(score.max_work, static_cast<int32_t>(work));
    if (begin.cut) ++score.cuts;
  }
  return score;
}

}  // namespace

std::vector<int32_t> build_plan_host(const int32_t* seqlens, int32_t batch, int32_t page_size,
                                     int32_t max_pages, PlanParams params) {
  const PlanLayout layout{batch, params.num_parts};
  const int32_t fixed = params.fixed_cost;
  std::vector<int32_t> plan(static_cast<std::size_t>(layout.words()), 0);
  int32_t* prefix = plan.data() + layout.cost_prefix();
  int32_t* part_begin = plan.data() + layout.part_begin();
  int32_t* first_part = plan.data() + layout.first_part();
  int32_t* num_splits = plan.data() + layout.num_splits();
  int32_t* slot_offset = plan.data() + layout.slot_offset();
  int32_t* split_requests = plan.data() + layout.split_requests();

  std::vector<int32_t> pages(static_cast<std::size_t>(batch));
  int64_t total = 0;
  for (int32_t i = 0; i < batch; ++i) {
    pages[i] = request_blocks(seqlens[i], page_size, max_pages);
    prefix[i] = static_cast<int32_t>(total);
    total += pages[i] + fixed;
  }
  prefix[batch] = static_cast<int32_t>(total);
  const int32_t w = work_per_part(total, params.num_parts, params.min_work);

  // The grid: every candidate width scored unsnapped and snapped, the best variant's boundaries kept.
  const GridCandidates candidates = grid_candidates(w);
  GridScore best{};
  for (int32_t k = 0; k < candidates.count; ++k) {
    const int32_t width = candidates.first_width + k;
    const std::vector<GridPoint> points = walk_grid(prefix, batch, width);
    for (const int32_t snap : {0, snap_tolerance(width, w)}) {
      const GridScore score = score_grid(points, width, fixed, snap);
      if (best.width == 0 || better_grid(score, best)) best = score;
    }
  }
  const std::vector<GridPoint> points = walk_grid(prefix, batch, best.width);
  for (int32_t q = 0; q <= params.num_parts; ++q) {
    const auto k = static_cast<std::size_t>(q);
    part_begin[q] =
        static_cast<int32_t>(k < points.size() ? snap_boundary(points[k], fixed, best.snap).pos : total);
  }

  // Each request's parts: those holding its first owned and its last position (a forward walk over parts).
  std::vector<int32_t> begin(static_cast<std::size_t>(params.num_parts), std::numeric_limits<int32_t>::max());
  std::vector<int32_t> end(static_cast<std::size_t>(params.num_parts), -1);
  std::fill_n(split_requests, params.num_parts, -1);
  int32_t* split_states = plan.data() + layout.split_states();
  int32_t* split_slots = plan.data() + layout.split_slots();
  std::fill_n(split_states, params.num_parts, 0);
  std::fill_n(split_slots, params.num_parts, 0);
  int32_t slots = 0, split_count = 0, max_splits = 1;
  int32_t part = 0;
  for (int32_t i = 0; i < batch; ++i) {
    const int64_t start = prefix[i], cost = prefix[i + 1] - start;
    while (part_begin[part + 1] <= first_owned_position(start, cost, fixed)) ++part;
    int32_t last = part;
    while (part_begin[last + 1] <= start + cost - 1) ++last;
    const int32_t splits = last - part + 1;
    first_part[i] = part;
    num_splits[i] = splits;
    slot_offset[i] = slots;
    if (splits > 1) {
      max_splits = std::max(max_splits, splits);
      split_requests[split_count] = i;
      split_states[split_count] = splits;
      split_slots[split_count++] = slots;
      slots += splits;
    }
    for (int32_t p = part; p <= last; ++p) {
      begin[p] = std::min(begin[p], i);
      end[p] = std::max(end[p], i);
    }
  }
  for (int32_t p = 0; p < params.num_parts; ++p) {
    plan[layout.part_req_begin() + p] = end[p] < 0 ? 0 : begin[p];
    plan[layout.part_req_end() + p] = end[p];
  }

  const PlanHeader header{
      batch, params.num_parts, w, fixed, split_count, static_cast<int32_t>(total), max_splits, 0};
  std::memcpy(plan.data(), &header, sizeof(header));
  return plan;
}

std::vector<PartSegment> part_segments(const std::vector<int32_t>& plan, int32_t part) {
  if (plan.size() < sizeof(PlanHeader) / sizeof(int32_t))
    throw std::invalid_argument("plan buffer too short");
  PlanHeader header;
  std::memcpy(&header, plan.data(), sizeof(header));
  const PlanLayout layout{header.batch, header.num_parts};
  if (static_cast<int64_t>(plan.size()) < layout.words() || part < 0 || part >= header.num_parts)
    throw std::invalid_argument("plan buffer too short or part out of range");
  const int32_t* prefix = plan.data() + layout.cost_prefix();
  const int32_t* part_begin = plan.data() + layout.part_begin();
  const int32_t fixed = header.fixed_cost;

  std::vector<PartSegment> segments;
  const int32_t last = plan[layout.part_req_end() + part];
  for (int32_t i = plan[layout.part_req_begin() + part]; i <= last; ++i) {
    const int32_t pages = prefix[i + 1] - prefix[i] - fixed;
    const PageRange range = part_pages(part_begin[part], part_begin[part + 1], prefix[i], pages, fixed);
    segments.push_back(
        {i, range.begin, range.end, part - plan[layout.first_part() + i], plan[layout.num_splits() + i]});
  }
  return segments;
}

}  // namespace etap::testing
