// Device queries: capability check and SM count. What a query found on success is kept per device id
// (common/per_device.hpp), so that an eager call pays for the queries once per process; failures are not kept
// and are queried and described again on every call.
#include <cuda_runtime_api.h>

#include "api/api_internal.hpp"
#include "common/per_device.hpp"

namespace etap {
namespace {

constexpr int kRequiredMajor = 9;  // sm_90a code runs on compute capability 9.0 only
constexpr int kRequiredMinor = 0;

// A failed query leaves an error in the runtime's per-thread slot; clear it so that it does not surface in
// the caller's next cudaGetLastError().
Status no_device(const std::string& message) {
  cudaGetLastError();
  return {StatusCode::kNoDevice, message};
}

common::PerDevice<bool> verified_devices;  // check_device(d) has succeeded
common::PerDevice<int> sm_counts;          // 0: not queried yet

}  // namespace

Status check_device(int device) {
  if (verified_devices.get(device)) return Status::Ok();
  int count = 0;
  const cudaError_t count_error = cudaGetDeviceCount(&count);
  if (count_error != cudaSuccess || count == 0)
    return no_device(api::str("no CUDA device found (", cudaGetErrorString(count_error), ")"));
  if (device < 0 || device >= count)
    return no_device(api::str("CUDA device ", device, " does not exist; ", count, " device(s) visible"));
  int major = 0, minor = 0;
  if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess ||
      cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device) != cudaSuccess)
    return no_device(api::str("cannot query the compute capability of CUDA device ", device));
  if (major != kRequiredMajor || minor != kRequiredMinor) {
    cudaDeviceProp prop{};
    const std::string name = cudaGetDeviceProperties(&prop, device) == cudaSuccess ? prop.name : "unknown";
    return no_device(api::str("etap needs compute capability ", kRequiredMajor, ".", kRequiredMinor,
                              "; found ", major, ".", minor, " (device ", device, ": ", name, ")"));
  }
  verified_devices.set(device, true);
  return Status::Ok();
}

namespace api {

Status resolve_num_sms(const Options& options, int* num_sms) {
  if (options.num_sms < 0)
    return {
        StatusCode::kInvalidArgument,
        str("Options.num_sms must be 0 (all SMs of the current device) or positive; got ", options.num_sms)};
  if (options.num_sms > 0) {
    *num_sms = options.num_sms;
    return Status::Ok();
  }
  int device = 0;
  const bool have_device = cudaGetDevice(&device) == cudaSuccess;
  int count = have_device ? sm_counts.get(device) : 0;
  if (count == 0) {
    if (!have_device ||
        cudaDeviceGetAttribute(&count, cudaDevAttrMultiProcessorCount, device) != cudaSuccess || count < 1)
      return no_device(
          "cannot query the SM count of the current CUDA device (no device?); set Options.num_sms "
          "explicitly");
    sm_counts.set(device, count);
  }
  *num_sms = count;
  return Status::Ok();
}

}  // namespace api
}  // namespace etap
