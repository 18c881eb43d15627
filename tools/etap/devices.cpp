// `etap devices`: the visible GPUs and whether etap runs on them.
#include <cuda_runtime_api.h>

#include <cstdio>
#include <memory>
#include <string>

#include "commands.hpp"
#include "flags.hpp"
#include "gpu.hpp"

namespace etap::cli {
namespace {

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;
constexpr double kMiB = 1024.0 * 1024.0;

int list_devices(bool require_gpu) {
  int runtime = 0, driver = 0;
  cudaRuntimeGetVersion(&runtime);
  cudaDriverGetVersion(&driver);
  std::printf("CUDA runtime %s, driver %s\n", cuda_version_string(runtime).c_str(),
              cuda_version_string(driver).c_str());
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess || count == 0) {
    cudaGetLastError();
    std::printf("no CUDA device (%s); etap needs a compute-capability-9.0 GPU (H100, H200, H20, GH200)\n",
                err != cudaSuccess ? cudaGetErrorString(err) : "none visible");
    return require_gpu ? kExitNoGpu : kExitOk;
  }
  bool any_supported = false;
  for (int d = 0; d < count; ++d) {
    cudaDeviceProp prop{};
    if (cudaGetDeviceProperties(&prop, d) != cudaSuccess) {
      cudaGetLastError();
      std::printf("GPU %d: properties could not be read\n", d);
      continue;
    }
    const bool supported = prop.major == 9 && prop.minor == 0;
    any_supported |= supported;
    std::printf("GPU %d: %s  compute capability %d.%d  %d SMs  %.1f GiB  L2 %.0f MiB  %s\n", d, prop.name,
                prop.major, prop.minor, prop.multiProcessorCount,
                static_cast<double>(prop.totalGlobalMem) / kGiB, prop.l2CacheSize / kMiB,
                supported ? "supported" : "not supported (etap needs 9.0)");
  }
  return require_gpu && !any_supported ? kExitNoGpu : kExitOk;
}

}  // namespace

void add_devices_command(CLI::App& app, int& exit_code) {
  CLI::App* devices = app.add_subcommand("devices", "List the GPUs and whether etap supports them");
  auto require_gpu = std::make_shared<bool>(false);
  devices->add_flag("--require-gpu", *require_gpu, "Exit 2 when no compute-capability-9.0 GPU is listed");
  devices->footer(kExitStatusHelp);
  devices->callback([require_gpu, &exit_code] { exit_code = list_devices(*require_gpu); });
}

}  // namespace etap::cli
