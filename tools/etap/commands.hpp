// Subcommands of the etap command line. Each registers itself on `app` and, when it runs, stores its exit
// status in `exit_code`.
#pragma once

#include <CLI/CLI.hpp>

namespace etap::cli {

// Exit status of `etap check` (and of `etap run --require-gpu`) when no compute-capability-9.0 GPU is
// present.
inline constexpr int kExitNoGpu = 2;

void add_run_command(CLI::App& app, int& exit_code);
void add_check_command(CLI::App& app, int& exit_code);
void add_devices_command(CLI::App& app, int& exit_code);

}  // namespace etap::cli
