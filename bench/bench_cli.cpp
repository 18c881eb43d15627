#include "bench_cli.hpp"

#include <cuda_runtime_api.h>

#include <CLI/CLI.hpp>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "record.hpp"
#include "runner.hpp"
#include "sweeps.hpp"
#include "table.hpp"

namespace etap::bench {
namespace {

constexpr int kExitFailed = 1;  // an implementation failed its check or hit an error
constexpr int kExitFatal = 2;   // no usable GPU, or the run could not finish
constexpr int kMinIters = 20;   // DESIGN.md §5: median of ≥ 20 runs

struct CliState {
  std::string sweep;
  FreeForm free_form;
  std::string dtype = "bf16";
  RunOptions run;
  std::string json_path, csv_path;
  std::string show_path;
  bool no_check = false;
  bool list = false;
};

bool write_file(const std::string& path, const std::string& text, const char* what) {
  std::ofstream f(path);
  f << text;
  f.close();
  if (!f) {
    std::cerr << "etap bench: cannot write the " << what << " file '" << path << "'\n";
    return false;
  }
  std::cerr << "wrote " << what << " to " << path << "\n";
  return true;
}

int show_report(const std::string& path) {
  std::ifstream f(path);
  if (!f) {
    std::cerr << "etap bench: cannot read '" << path << "'\n";
    return kExitFatal;
  }
  try {
    const Report report = nlohmann::json::parse(f).get<Report>();
    if (report.synthetic) std::cout << "SYNTHETIC REPORT: not measured numbers\n";
    std::cout << format_ceilings(report) << report.machine.date << ", " << report.method.statistic << " of "
              << report.method.iters << (report.method.graph ? " CUDA-graph replays" : " runs") << "\n\n"
              << format_table(report);
  } catch (const std::exception& e) {
    std::cerr << "etap bench: " << path << ": " << e.what() << "\n";
    return kExitFatal;
  }
  return 0;
}

int run_command(CliState& st) {
  if (!st.show_path.empty()) return show_report(st.show_path);
  std::vector<BenchConfig> configs = st.sweep.empty()
                                         ? free_form_sweep(st.free_form)
                                         : named_sweep(st.sweep).value_or(std::vector<BenchConfig>{});
  for (BenchConfig& c : configs) c.dtype = st.dtype;
  if (st.list) {
    for (const BenchConfig& c : configs) std::cout << c.sweep << ": " << describe(c) << "\n";
    return 0;
  }

  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    cudaGetLastError();
    std::cerr
        << "etap bench: no CUDA device on this machine; the benchmark needs a Hopper GPU (run it on the "
           "device machine, e.g. tools/gpu-check.sh bench). `etap bench --list` shows the configurations.\n";
    return kExitFatal;
  }

  st.run.configs = std::move(configs);
  st.run.check = !st.no_check;
  Report report;
  int rc = 0;
  try {
    run_bench(st.run, report, std::cerr);
  } catch (const std::exception& e) {
    std::cerr << "\netap bench: error: " << e.what() << "\n";
    rc = kExitFatal;
  }

  std::cout << "\n" << format_ceilings(report) << "\n" << format_table(report);
  if (!st.json_path.empty() && !write_file(st.json_path, nlohmann::json(report).dump(2) + "\n", "JSON"))
    rc = std::max(rc, kExitFailed);
  if (!st.csv_path.empty() && !write_file(st.csv_path, to_csv(report), "CSV")) rc = std::max(rc, kExitFailed);
  for (const Record& r : report.records)
    if (r.outcome == Outcome::kFailed || r.outcome == Outcome::kError) rc = std::max(rc, kExitFailed);
  return rc;
}

}  // namespace

void add_bench_command(CLI::App& app) {
  auto st = std::make_shared<CliState>();
  CLI::App* cmd = app.add_subcommand(
      "bench", "Time etap against the padded and unfused-cuBLAS baselines, with the GPU's measured ceilings");
  cmd->footer(
      "Sweeps:\n"
      "  paper   b in {16,32}, h_q=16, s_q=1, s_k in {512 .. 64K} (the paper's tables)\n"
      "  heads   h_q in {8,16,32,64,128} x s_q in {1,2,4} (causal), b=16, s_k=8K\n"
      "  batch   b in {1,4,16,64,128,256}, s_k=4K, h_q=16\n"
      "  varlen  b in {16,64}, mean s_k in {1K,4K,16K}: lengths from N(mean, mean/2), clipped to >= 1, fixed "
      "seed\n"
      "  all     all of the above\n"
      "Without --sweep, the configurations are every combination of --batch/--seqlen (or "
      "--varlen-mean)/--h-q/"
      "--s-q.\nMethod: CUDA events around each call, L2 flushed before each timed run, median of --iters "
      "runs "
      "after --warmup; every implementation is checked against the CPU reference first (b=2, s_k "
      "{300,137}).");

  auto* sweep = cmd->add_option("--sweep", st->sweep, "Named sweep")->check(CLI::IsMember(sweep_names()));
  const auto sizes = CLI::AsSizeValue(false);  // 8K = 8192
  auto* batch = cmd->add_option("--batch", st->free_form.batches, "Batch sizes (comma-separated)")
                    ->delimiter(',')
                    ->check(CLI::PositiveNumber)
                    ->capture_default_str();
  auto* seqlen = cmd->add_option("--seqlen", st->free_form.seqlens, "KV lengths s_k, e.g. 1K,8K,64K")
                     ->delimiter(',')
                     ->transform(sizes)
                     ->check(CLI::PositiveNumber)
                     ->capture_default_str();
  auto* h_q = cmd->add_option("--h-q", st->free_form.h_qs, "Query heads")
                  ->delimiter(',')
                  ->check(CLI::PositiveNumber)
                  ->capture_default_str();
  auto* s_q = cmd->add_option("--s-q", st->free_form.s_qs, "Query tokens per request (MTP when > 1)")
                  ->delimiter(',')
                  ->check(CLI::PositiveNumber)
                  ->capture_default_str();
  auto* varlen =
      cmd->add_option("--varlen-mean", st->free_form.varlen_means,
                      "Variable lengths: per-request s_k from N(mean, mean/2), instead of --seqlen")
          ->delimiter(',')
          ->transform(sizes)
          ->check(CLI::PositiveNumber);
  auto* causal = cmd->add_flag("--causal", st->free_form.causal, "Causal MTP masking (bottom-right aligned)");
  cmd->add_option("--dtype", st->dtype, "q, kv and out dtype")
      ->check(CLI::IsMember({"bf16", "fp16"}))
      ->capture_default_str();
  sweep->excludes(batch)->excludes(seqlen)->excludes(h_q)->excludes(s_q)->excludes(varlen)->excludes(causal);
  varlen->excludes(seqlen);

  cmd->add_option("--impl", st->run.impls, "Implementations to time: etap, padded, cublas (default all)")
      ->delimiter(',')
      ->check(CLI::IsMember(implementation_names()));
  cmd->add_option("--iters", st->run.iters, "Timed runs per configuration (median reported)")
      ->check(CLI::Range(kMinIters, 1000000))
      ->capture_default_str();
  cmd->add_option("--warmup", st->run.warmup, "Untimed runs first")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_flag("--graph", st->run.graph,
                "CUDA-graph mode: capture --graph-calls calls, time replays, per call");
  cmd->add_option("--graph-calls", st->run.graph_calls, "Calls captured per graph in --graph mode")
      ->check(CLI::Range(1, 10000))
      ->capture_default_str();
  cmd->add_option("--num-sms", st->run.num_sms, "SMs the etap schedule spreads over (0 = all)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--json", st->json_path, "Write every figure and the machine description as JSON");
  cmd->add_option("--csv", st->csv_path, "Write the records as CSV");
  cmd->add_flag("--no-check", st->no_check, "Skip the correctness checks against the CPU reference");
  cmd->add_flag("--list", st->list, "Print the configurations and exit (no GPU needed)");
  cmd->add_option("--show", st->show_path,
                  "Print the table of a stored --json report and exit (no GPU needed)")
      ->check(CLI::ExistingFile);

  cmd->callback([st] {
    if (const int rc = run_command(*st); rc != 0) throw CLI::RuntimeError(rc);
  });
}

}  // namespace etap::bench
