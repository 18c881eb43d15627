// Host twin of src/decode/plan/plan_kernel.cu. It fills part_req_begin/end by a direct min/max over every
// request's part span, a different method from the kernel's binary search, so that the cross-check means
// something.
#include "testing/plan_host.hpp"

#include <algorithm>
#include <cstring>
#include <limits>
#include <stdexcept>

namespace etap::testing {

using namespace decoding;

std::vector<int32_t> build_plan_host(const int32_t* seqlens, int32_t batch, int32_t page_size,
                                     int32_t max_pages, PlanParams params) {
  const PlanLayout layout{batch, params.num_parts};
  const int32_t fixed = params.fixed_cost;
  std::vector<int32_t> plan(static_cast<std::size_t>(layout.words()), 0);
  int32_t* prefix = plan.data() + layout.cost_prefix();
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

  std::vector<int32_t> begin(static_cast<std::size_t>(params.num_parts), std::numeric_limits<int32_t>::max());
  std::vector<int32_t> end(static_cast<std::size_t>(params.num_parts), -1);
  std::fill_n(split_requests, params.num_parts, -1);
  int32_t slots = 0, split_count = 0, max_splits = 1;
  for (int32_t i = 0; i < batch; ++i) {
    const PartSpan span = request_parts(prefix[i], pages[i], fixed, w);
    const int32_t splits = span.last - span.first + 1;
    first_part[i] = span.first;
    num_splits[i] = splits;
    slot_offset[i] = slots;
    if (splits > 1) {
      max_splits = std::max(max_splits, splits);
      slots += splits;
      split_requests[split_count++] = i;
    }
    for (int32_t p = span.first; p <= span.last; ++p) {
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
  const int32_t fixed = header.fixed_cost;

  std::vector<PartSegment> segments;
  const int32_t last = plan[layout.part_req_end() + part];
  for (int32_t i = plan[layout.part_req_begin() + part]; i <= last; ++i) {
    const int32_t pages = prefix[i + 1] - prefix[i] - fixed;
    const PageRange range = part_pages(part, prefix[i], pages, fixed, header.work_per_part);
    segments.push_back(
        {i, range.begin, range.end, part - plan[layout.first_part() + i], plan[layout.num_splits() + i]});
  }
  return segments;
}

}  // namespace etap::testing
