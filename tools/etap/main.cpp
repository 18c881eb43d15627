// etap — command line for the etap MLA decode library: run, check, bench, devices.
#include <cuda_runtime_api.h>

#include <cstdio>
#include <exception>
#include <string>

#include "commands.hpp"
#include "gpu.hpp"

#if defined(ETAP_HAVE_BENCH)
#include "bench/bench_cli.hpp"
#endif

namespace {

std::string version_text() {
  int runtime = 0, driver = 0;
  cudaRuntimeGetVersion(&runtime);
  cudaDriverGetVersion(&driver);
  return std::string("etap ") + ETAP_VERSION + " (CUDA runtime " + etap::cli::cuda_version_string(runtime) +
         ", driver " + etap::cli::cuda_version_string(driver) + ")";
}

void add_bench_placeholder(CLI::App& app, int& exit_code) {
  CLI::App* bench = app.add_subcommand("bench", "Benchmark sweeps (not built in this configuration)");
  bench->allow_extras();
  bench->callback([&exit_code] {
    std::fprintf(stderr,
                 "etap bench is not built (ETAP_BUILD_BENCH=OFF); reconfigure with -DETAP_BUILD_BENCH=ON\n");
    exit_code = 1;
  });
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"etap: MLA decode attention for Hopper GPUs (ETAP: KV length on wgmma's M, query rows on N)"};
  app.set_version_flag("--version", version_text);
  app.require_subcommand(1);
  app.footer("Run `etap <command> --help` for the options of a command.");

  int exit_code = 0;
  etap::cli::add_run_command(app, exit_code);
  etap::cli::add_check_command(app, exit_code);
#if defined(ETAP_HAVE_BENCH)
  etap::bench::add_bench_command(app);
#else
  add_bench_placeholder(app, exit_code);
#endif
  etap::cli::add_devices_command(app, exit_code);

  try {
    app.parse(argc, argv);
  } catch (
      const CLI::RuntimeError& e) {  // a subcommand's exit status (etap bench); it printed its own report
    return e.get_exit_code();
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "etap: error: %s\n", e.what());
    return 1;
  }
  return exit_code;
}
