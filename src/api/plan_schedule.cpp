// plan() from the problem and device seqlens alone: the schedule before a block table exists (FlashMLA's
// older get_mla_metadata). Same checks, buffer sizes and plan kernel as plan(args).
#include "api/api_internal.hpp"

namespace etap {

Status plan(const DecodeProblem& problem, const int32_t* seqlens, void* plan_buffer,
            std::size_t plan_buffer_bytes, cudaStream_t stream, const Options& options) {
  DecodeProblem planned = problem;
  planned.num_pages = 1;  // the schedule never reads the cache
  // Without a block table, every request keeps ceil(seqlen / page_size) pages, up to the bound that keeps
  // the schedule's 32-bit cost line from overflowing (any block table decode() accepts is within it).
  if (planned.max_pages_per_seq == 0)
    planned.max_pages_per_seq = api::largest_max_pages_per_seq(planned.batch, planned.page_size);
  api::BufferSizes sizes{};
  ETAP_RETURN_IF_ERROR(api::buffer_sizes(planned, options, &sizes));
  if (seqlens == nullptr)
    return {StatusCode::kInvalidArgument,
            "seqlens is null; pass the device address of the int32 sequence lengths [batch]"};
  if (reinterpret_cast<std::uintptr_t>(seqlens) % alignof(int32_t) != 0)
    return {StatusCode::kInvalidArgument,
            api::str("seqlens must be 4-byte aligned (int32); got address ", api::hex_address(seqlens))};
  DecodeArgs args;
  args.problem = planned;
  args.seqlens = seqlens;
  return api::launch_plan_checked(args, sizes, plan_buffer, plan_buffer_bytes, stream);
}

}  // namespace etap
