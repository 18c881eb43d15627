// Helpers shared by the API translation units (src/api); not installed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <etap/etap.hpp>
#include <string>

#include "common/status.hpp"
#include "decode/plan/plan.hpp"
#include "decode/plan/row_tiles.hpp"

namespace etap::api {

using common::str;

// Shapes, dtypes and supported configurations of a problem, independent of any pointer or stride.
Status check_problem(const DecodeProblem& problem);

// The largest max_pages_per_seq that check_problem accepts for `batch` requests of `page_size`-token pages
// (the schedule's 32-bit cost line), at least 1.
int32_t largest_max_pages_per_seq(int32_t batch, int32_t page_size);

// Options.num_sms, or the SM count of the current device when it is 0.
Status resolve_num_sms(const Options& options, int* num_sms);

// Buffer sizes of a problem; fails when the problem is invalid or unsupported, or when num_sms = 0 and no
// device can be queried.
struct BufferSizes {
  decoding::PlanParams params;
  std::size_t plan_bytes;
  std::size_t workspace_bytes;
};
Status buffer_sizes(const DecodeProblem& problem, const Options& options, BufferSizes* sizes);

// Elements of one [token, head] row of the KV cache: d_qk, or the 656 bytes of a kFp8DeepSeekV32 token.
int64_t kv_row_elements(const DecodeProblem& problem);

// kUnsupported for a valid problem this build has no kernel for (the FP8 formats); run after
// check_problem.
Status check_kernel_built(const DecodeProblem& problem);

// "0x7f00…" for messages that name an address.
std::string hex_address(const void* pointer);

// The plan buffer holds int32 words.
inline constexpr std::uintptr_t kPlanAlignment = alignof(int32_t);

// kNoDevice unless the current CUDA device has compute capability 9.0.
Status check_current_device();

// A caller-owned device buffer: non-null, aligned, at least `needed` bytes (kWorkspaceTooSmall otherwise).
// `size_function` names the function that gives the size, for the message.
Status check_buffer(const char* name, const void* buffer, std::size_t size, std::size_t needed,
                    std::uintptr_t alignment, const char* size_function);

// kCudaError naming `what` when `error` is not cudaSuccess.
Status cuda_status(const char* what, cudaError_t error);

// The shared tail of both plan() overloads, once their arguments are checked and `sizes` computed: the plan
// buffer, the device, then the plan kernel (only args.problem and args.seqlens are read).
Status launch_plan_checked(const DecodeArgs& args, const BufferSizes& sizes, void* plan_buffer,
                           std::size_t plan_buffer_bytes, cudaStream_t stream);

}  // namespace etap::api
