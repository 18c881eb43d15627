// `etap bench`: adds the benchmark subcommand to the etap command line (tools/etap).
#pragma once

namespace CLI {
class App;
}

namespace etap::bench {

// Registers `bench` on `app`. Its callback runs the benchmark and throws CLI::RuntimeError with the exit code
// when it is not 0: 1 = an implementation failed its correctness check or hit an error, 2 = no usable GPU
// or a fatal CUDA error.
void add_bench_command(CLI::App& app);

}  // namespace etap::bench
