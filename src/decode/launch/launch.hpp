// Internal entry points of the decode path, called by the public API (src/api) after validation.
#pragma once

#include <cstdint>
#include <etap/etap.hpp>

#include "decode/kernel/params.hpp"
#include "decode/launch/kernel_choice.hpp"
#include "decode/plan/plan.hpp"

namespace etap::decoding {

// Workspace: a small header for checked mode, then fp32 partial results of split requests.
// Slots: requests split over s ≥ 2 parts use Σ s ≤ 2(P − 1) slots (plan.hpp), so 2P slots always suffice.
struct WorkspaceLayout {
  int64_t slots = 0, rows = 0, d_v = 0;
  static constexpr int64_t kCheckOffset = 0;      // int32[4]: checked-mode verdict
  static constexpr int64_t kPartialOffset = 256;  // fp32 [slots, rows, d_v] partial O (normalised)
  int64_t lse_offset() const { return kPartialOffset + slots * rows * d_v * 4; }  // fp32 [slots, rows], log2
  int64_t bytes() const { return lse_offset() + slots * rows * 4; }

  // Rows of a slot: every query row of a request (s_q · h_q; varlen: max_seqlen_q · h_q, the longest
  // request), each row tile storing its own.
  static WorkspaceLayout make(const DecodeProblem& p, int32_t num_parts) {
    return {2 * static_cast<int64_t>(num_parts), int64_t{p.s_q} * p.h_q, p.d_v};
  }
};

// The KV load path for a page size (KvLoad): TMA chunks need page-aligned boxes of at least 8 tokens, so
// that each chunk starts on a 1024-byte swizzle atom of the stage.
inline constexpr int32_t kMinChunkTokens = 8;
KvLoad kv_load_of(int32_t page_size);

// Launches the plan kernel: fills the plan buffer (plan.hpp layout) from device seqlens.
cudaError_t launch_plan(const DecodeArgs& args, int32_t* plan, PlanParams params, cudaStream_t stream);

// The kernel parameters of one call: args, the plan buffer and the workspace carved as WorkspaceLayout says.
KernelParams make_params(const DecodeArgs& args, const int32_t* plan, void* workspace, int32_t num_parts);

// Launches the ETAP decode kernel and, when a request is split, the combine kernel (programmatic
// dependent launch). `plan` comes from launch_plan with the same args and params. `choice`: the kernel rule
// (use_rows_kernel), or the transposed kernel for the benchmark's A/B.
cudaError_t launch_decode(const DecodeArgs& args, const int32_t* plan, PlanParams params, void* workspace,
                          cudaStream_t stream, KernelChoice choice = KernelChoice::kAuto);

}  // namespace etap::decoding
