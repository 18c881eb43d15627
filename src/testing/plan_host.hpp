// Host-side twin of the plan kernel (bit-identical buffer) and a reader of plan buffers: used by the tests to
// cross-check the GPU planner and to enumerate the work of every part. Not part of libetap.
#pragma once

#include <cstdint>
#include <vector>

#include "decode/plan/plan.hpp"

namespace etap::testing {

// The plan buffer (PlanLayout, int32 words) for `batch` requests with host `seqlens`.
std::vector<int32_t> build_plan_host(const int32_t* seqlens, int32_t batch, int32_t page_size,
                                     int32_t max_pages, decoding::PlanParams params);

// One request's share of one part's work (the host view; the kernel walks decoding::Segment).
struct PartSegment {
  int32_t request;
  int32_t page_begin, page_end;  // pages [begin, end) of the request; empty for a request with seqlen 0
  int32_t split_index;           // part − first_part of the request
  int32_t num_splits;            // 1: the part writes out/lse directly; > 1: a partial slot, then combine
};

// The requests part `part` processes, in request order, read from a plan buffer (page counts are recovered
// from the cost prefix, so seqlens are not needed).
std::vector<PartSegment> part_segments(const std::vector<int32_t>& plan, int32_t part);

}  // namespace etap::testing
