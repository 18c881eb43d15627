// Walks the segments (request, page range) one CTA owns in the plan. Producer and consumers walk the same
// sequence, so their mbarrier phases stay in step.
#pragma once

#include <cstdint>

#include "common/constants.hpp"
#include "decode/kernel/params.hpp"
#include "decode/plan/plan.hpp"

namespace etap::decoding {

// "Pages" of a segment are the kernel's 64-token KV blocks (kBlockTokens), whatever the cache's page size.
struct Segment {
  int32_t request;
  int32_t page_begin, page_end;  // blocks of this CTA
  int32_t pages;                 // blocks of the whole request
  int32_t seqlen;                // clamped to [0, max_pages · page_size]
  int32_t split_index, num_splits;
  int32_t slot;  // partial-result slot when num_splits > 1
};

template <class Fn>
__device__ __forceinline__ void for_each_segment(const KernelParams& p, int part, Fn&& fn) {
  // The layout comes from the launch parameters, not the header, so that the header and the part's
  // request range load in parallel: one dependent round trip less before the first TMA.
  const PlanHeader& header = *reinterpret_cast<const PlanHeader*>(p.plan);
  const PlanLayout layout{p.batch, p.num_parts};
  const int32_t req_begin = p.plan[layout.part_req_begin() + part];
  const int32_t req_end = p.plan[layout.part_req_end() + part];
  const int32_t pos_begin = p.plan[layout.part_begin() + part];  // the part's interval on the cost line
  const int32_t pos_end = p.plan[layout.part_begin() + part + 1];
  if (!plan_matches(header, p.batch, p.num_parts)) return;
  for (int32_t i = req_begin; i <= req_end; ++i) {
    const int32_t raw_seqlen = p.seqlens[i];
    const auto seqlen = static_cast<int32_t>(request_tokens(raw_seqlen, p.page_size, p.max_pages));
    const int32_t pages = (seqlen + kBlockTokens - 1) / kBlockTokens;
    const PageRange range =
        part_pages(pos_begin, pos_end, p.plan[layout.cost_prefix() + i], pages, header.fixed_cost);
    if (pages > 0 && range.begin == range.end) continue;
    const int32_t first_part = p.plan[layout.first_part() + i];
    const int32_t splits = p.plan[layout.num_splits() + i];
    fn(Segment{i, range.begin, range.end, pages, seqlen, part - first_part, splits,
               p.plan[layout.slot_offset() + i] + (part - first_part)});
  }
}

}  // namespace etap::decoding
