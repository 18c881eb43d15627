// Subcommands of the etap command line. Each registers itself on `app` and, when it runs, stores its exit
// status (flags.hpp) in `exit_code`.
#pragma once

#include <CLI/CLI.hpp>

namespace etap::cli {

void add_run_command(CLI::App& app, int& exit_code);
void add_check_command(CLI::App& app, int& exit_code);
void add_devices_command(CLI::App& app, int& exit_code);
// The benchmark (bench/), where it is built (ETAP_BUILD_BENCH); otherwise a placeholder that says so.
void add_bench_command(CLI::App& app, int& exit_code);

}  // namespace etap::cli
