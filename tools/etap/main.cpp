// etap — command line for the etap MLA decode library: run, check, bench, devices.
#include <cuda_runtime_api.h>

#include <cstdio>
#include <exception>
#include <string>

#include "commands.hpp"
#include "flags.hpp"
#include "gpu.hpp"

namespace {

std::string version_text() {
  int runtime = 0, driver = 0;
  cudaRuntimeGetVersion(&runtime);
  cudaDriverGetVersion(&driver);
  return std::string("etap ") + ETAP_VERSION + " (CUDA runtime " + etap::cli::cuda_version_string(runtime) +
         ", driver " + etap::cli::cuda_version_string(driver) + ")";
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"etap: MLA decode attention for Hopper GPUs (ETAP: KV length on wgmma's M, query rows on N)"};
  app.set_version_flag("--version", version_text);
  app.require_subcommand(1);
  app.footer(std::string("Run `etap <command> --help` for the options of a command.\n\n") +
             etap::cli::kExitStatusHelp);

  int exit_code = 0;
  etap::cli::add_run_command(app, exit_code);
  etap::cli::add_check_command(app, exit_code);
  etap::cli::add_bench_command(app, exit_code);
  etap::cli::add_devices_command(app, exit_code);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "etap: error: %s\n", e.what());
    return etap::cli::kExitFailed;
  }
  return exit_code;
}
