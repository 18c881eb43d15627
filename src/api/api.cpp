// plan() and decode(): validate, check the device and the caller's buffers, then launch. Neither allocates
// nor synchronises, except checked mode.
#include <cstdlib>
#include <cstring>

#include "api/api_internal.hpp"
#include "decode/checked/checked.hpp"
#include "decode/launch/kernel_choice.hpp"
#include "decode/launch/launch.hpp"

namespace etap {
namespace {

using api::check_buffer;
using api::check_current_device;
using api::cuda_status;
using api::kPlanAlignment;
using api::str;

constexpr std::uintptr_t kWorkspaceAlignment = 16;  // fp32 partials are stored as 16-byte vectors
constexpr const char* kCheckedEnv = "ETAP_CHECKED";

}  // namespace

// Shared with plan_schedule.cpp through api_internal.hpp.
namespace api {

Status check_current_device() {
  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess) {
    cudaGetLastError();
    return {StatusCode::kNoDevice, "no CUDA device found (cudaGetDevice failed)"};
  }
  return check_device(device);
}

Status check_buffer(const char* name, const void* buffer, std::size_t size, std::size_t needed,
                    std::uintptr_t alignment, const char* size_function) {
  if (buffer == nullptr)
    return {StatusCode::kInvalidArgument,
            str(name, " is null; allocate ", needed, " bytes of device memory (", size_function, ")")};
  if (reinterpret_cast<std::uintptr_t>(buffer) % alignment != 0)
    return {StatusCode::kInvalidArgument,
            str(name, " must be ", alignment, "-byte aligned; got address ", api::hex_address(buffer),
                " (cudaMalloc returns aligned memory)")};
  if (size < needed)
    return {StatusCode::kWorkspaceTooSmall,
            str(name, " is ", size, " bytes; this problem needs ", needed, " (", size_function, ")")};
  return Status::Ok();
}

Status cuda_status(const char* what, cudaError_t error) {
  if (error == cudaSuccess) return Status::Ok();
  return {StatusCode::kCudaError,
          str(what, " failed: ", cudaGetErrorString(error), " (", cudaGetErrorName(error), ")")};
}

}  // namespace api

namespace {

bool checked_mode(const Options& options) {
  if (options.checked) return true;
  const char* value = std::getenv(kCheckedEnv);
  return value != nullptr && value[0] != '\0' && std::strcmp(value, "0") != 0;
}

}  // namespace

namespace api {

Status buffer_sizes(const DecodeProblem& problem, const Options& options, BufferSizes* sizes) {
  ETAP_RETURN_IF_ERROR(check_problem(problem));
  ETAP_RETURN_IF_ERROR(check_kernel_built(problem));
  int num_sms = 0;
  ETAP_RETURN_IF_ERROR(resolve_num_sms(options, &num_sms));
  const decoding::RowTiling tiling = decoding::row_tiling(problem.s_q, problem.h_q, problem.h_kv);
  const decoding::PlanParams params = decoding::plan_params(
      num_sms, tiling.num_tiles, decoding::fixed_cost_for(decoding::runs_rows_kernel(problem)));
  sizes->params = params;
  sizes->plan_bytes = static_cast<std::size_t>(decoding::PlanLayout{problem.batch, params.num_parts}.bytes());
  sizes->workspace_bytes =
      static_cast<std::size_t>(decoding::WorkspaceLayout::make(problem, params.num_parts).bytes());
  return Status::Ok();
}

Status launch_plan_checked(const DecodeArgs& args, const BufferSizes& sizes, void* plan_buffer,
                           std::size_t plan_buffer_bytes, cudaStream_t stream) {
  ETAP_RETURN_IF_ERROR(check_buffer("plan buffer", plan_buffer, plan_buffer_bytes, sizes.plan_bytes,
                                    kPlanAlignment, "etap::plan_bytes"));
  ETAP_RETURN_IF_ERROR(check_current_device());
  return cuda_status("launching the plan kernel",
                     decoding::launch_plan(args, static_cast<int32_t*>(plan_buffer), sizes.params, stream));
}

}  // namespace api

std::size_t plan_bytes(const DecodeProblem& problem, const Options& options) {
  api::BufferSizes sizes{};
  return api::buffer_sizes(problem, options, &sizes).ok() ? sizes.plan_bytes : 0;
}

std::size_t workspace_bytes(const DecodeProblem& problem, const Options& options) {
  api::BufferSizes sizes{};
  return api::buffer_sizes(problem, options, &sizes).ok() ? sizes.workspace_bytes : 0;
}

Status plan(const DecodeArgs& args, void* plan_buffer, std::size_t plan_buffer_bytes, cudaStream_t stream,
            const Options& options) {
  ETAP_RETURN_IF_ERROR(validate(args));
  api::BufferSizes sizes{};
  ETAP_RETURN_IF_ERROR(api::buffer_sizes(args.problem, options, &sizes));
  return api::launch_plan_checked(args, sizes, plan_buffer, plan_buffer_bytes, stream);
}

Status decode(const DecodeArgs& args, const void* plan_buffer, std::size_t plan_buffer_bytes, void* workspace,
              std::size_t workspace_size, cudaStream_t stream, const Options& options) {
  ETAP_RETURN_IF_ERROR(validate(args));
  api::BufferSizes sizes{};
  ETAP_RETURN_IF_ERROR(api::buffer_sizes(args.problem, options, &sizes));
  ETAP_RETURN_IF_ERROR(check_buffer("plan buffer", plan_buffer, plan_buffer_bytes, sizes.plan_bytes,
                                    kPlanAlignment, "etap::plan_bytes"));
  ETAP_RETURN_IF_ERROR(check_buffer("workspace", workspace, workspace_size, sizes.workspace_bytes,
                                    kWorkspaceAlignment, "etap::workspace_bytes"));
  ETAP_RETURN_IF_ERROR(check_current_device());
  if (checked_mode(options)) {
    ETAP_RETURN_IF_ERROR(decoding::run_checks(args, workspace, stream));
    ETAP_RETURN_IF_ERROR(
        decoding::check_plan(plan_buffer, args.problem.batch, sizes.params.num_parts, stream));
  }
  return cuda_status("launching the decode kernels",
                     decoding::launch_decode(args, static_cast<const int32_t*>(plan_buffer), sizes.params,
                                             workspace, stream));
}

}  // namespace etap
