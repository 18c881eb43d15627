// `etap bench`: the benchmark harness of bench/ behind the etap command line, where it is built.
#include <cstdio>

#include "commands.hpp"
#include "flags.hpp"

#if defined(ETAP_HAVE_BENCH)
#include <cuda_runtime_api.h>

#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "bench/record.hpp"
#include "bench/runner.hpp"
#include "bench/sweeps.hpp"
#include "bench/table.hpp"

namespace etap::cli {
namespace {

using namespace etap::bench;

struct CliState {
  std::string sweep;
  FreeForm free_form;
  std::vector<std::string> head_dims{kDefaultHeadDims};  // D_QK/D_V, parsed into free_form.head_dims
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
    return kExitFailed;
  }
  try {
    const Report report = nlohmann::json::parse(f).get<Report>();
    if (report.synthetic) std::cout << "SYNTHETIC REPORT: not measured numbers\n";
    std::cout << format_ceilings(report) << report.machine.date << ", " << report.method.statistic << " of "
              << report.method.iters << (report.method.graph ? " CUDA-graph replays" : " runs") << "\n\n"
              << format_table(report);
  } catch (const std::exception& e) {
    std::cerr << "etap bench: " << path << ": " << e.what() << "\n";
    return kExitFailed;
  }
  return 0;
}

int run_command(CliState& st) {
  if (!st.show_path.empty()) return show_report(st.show_path);
  for (const std::string* path : {&st.json_path, &st.csv_path})
    if (!path->empty())
      if (const std::string reason = unwritable_reason(*path); !reason.empty()) {
        std::cerr << "etap bench: " << reason << "\n";
        return kExitCannotWrite;
      }
  st.free_form.head_dims.clear();
  for (const std::string& text : st.head_dims) {
    const cli::HeadDims d = parse_head_dims(text).value();  // the flag's validator accepted it
    st.free_form.head_dims.push_back({d.d_qk, d.d_v});
  }
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
    return kExitNoGpu;
  }

  st.run.configs = std::move(configs);
  st.run.check = !st.no_check;
  Report report;
  int rc = 0;
  try {
    run_bench(st.run, report, std::cerr);
  } catch (const std::exception& e) {
    std::cerr << "\netap bench: error: " << e.what() << "\n";
    rc = kExitFailed;
  }

  std::cout << "\n" << format_ceilings(report) << "\n" << format_table(report);
  if (!st.json_path.empty() && !write_file(st.json_path, nlohmann::json(report).dump(2) + "\n", "JSON"))
    rc = kExitCannotWrite;
  if (!st.csv_path.empty() && !write_file(st.csv_path, to_csv(report), "CSV")) rc = kExitCannotWrite;
  for (const Record& r : report.records)
    if (rc == kExitOk && (r.outcome == Outcome::kFailed || r.outcome == Outcome::kError)) rc = kExitFailed;
  return rc;
}

}  // namespace

void add_bench_command(CLI::App& app, int& exit_code) {
  auto st = std::make_shared<CliState>();
  CLI::App* cmd = app.add_subcommand(
      "bench", "Time etap against the padded and unfused-cuBLAS baselines, with the GPU's measured ceilings");
  cmd->footer(
      std::string(
          "Sweeps:\n"
          "  paper     b in {16,32}, h_q=16, s_q=1, s_k in {512 .. 64K} (the paper's tables)\n"
          "  heads     h_q in {8,16,32,64,128} x s_q in {1,2,4} (causal), b=16, s_k=8K\n"
          "  batch     b in {1,4,16,64,128,256}, s_k=4K, h_q=16\n"
          "  varlen    b in {16,64}, mean s_k in {1K,4K,16K}: lengths from N(mean, mean/2), clipped to >= 1, "
          "fixed seed\n"
          "  coverage  b=16 s_k=8K: h_q in {64,128}, h_q=64 s_q=2 (causal), h_kv=2 h_q=32,\n"
          "            page in {1,16,32,64,128,256}, d in {512/512,320/256}; b=128 s_k=4K h_q=128\n"
          "  fp8       b=16 h_q=16 s_k in {8K,64K} x kv in {dense,fp8,fp8-v32}; b=16 s_k=8K h_q in\n"
          "            {32,64,128} x kv in {dense,fp8} (with padded: FP8 transposed vs padded at "
          "R=16/32/64)\n"
          "  all       all of the above\n"
          "Without --sweep, the configurations are every combination of the comma-separated values of "
          "--batch, --seqlen (or --varlen), --h-q, --s-q, --h-kv, --page-size, --head-dims and --kv-format.\n"
          "The padded baseline covers one 64-row tile of the MLA shape (s_q*h_q <= 64, h_kv 1, page 64, "
          "d 576/512; FP8 caches with bf16 queries): elsewhere its rows read n/a.\n"
          "Method: CUDA events around each call, L2 flushed before each timed run, median of --iters "
          "runs after --warmup (the published tables use >= 20); every implementation is checked "
          "against the CPU reference first (b=2, s_k {300,137}).\n\n") +
      kExitStatusHelp);

  auto* sweep = cmd->add_option("--sweep", st->sweep, "Named sweep")->check(CLI::IsMember(sweep_names()));
  auto* batch = add_int_flag(cmd, kBatch, st->free_form.batches);
  auto* seqlen = add_int_flag(cmd, kSeqlen, st->free_form.seqlens);
  auto* varlen = add_int_flag(cmd, kVarlen, st->free_form.varlen_means);
  auto* h_q = add_int_flag(cmd, kHq, st->free_form.h_qs);
  auto* s_q = add_int_flag(cmd, kSq, st->free_form.s_qs);
  auto* h_kv = add_int_flag(cmd, kHkv, st->free_form.h_kvs);
  auto* page_size = add_int_flag(cmd, kPageSize, st->free_form.page_sizes);
  auto* head_dims = add_head_dims_flag(cmd, st->head_dims);
  auto* causal = cmd->add_flag("--causal", st->free_form.causal, "Causal MTP mask (bottom-right aligned)");
  add_dtype_flag(cmd, st->dtype);
  auto* kv_format = add_kv_format_flag(cmd, st->free_form.kv_formats);
  sweep->excludes(kv_format);
  sweep->excludes(batch)->excludes(seqlen)->excludes(h_q)->excludes(s_q)->excludes(varlen)->excludes(causal);
  sweep->excludes(h_kv)->excludes(page_size)->excludes(head_dims);
  varlen->excludes(seqlen);

  cmd->add_option("--impl", st->run.impls,
                  "Implementations to time: etap, padded, cublas (default: these three), etap-transposed "
                  "(etap with the transposed kernel for every row tile), etap-rows (the rows-on-M kernel for "
                  "every row tile)")
      ->delimiter(',')
      ->check(CLI::IsMember(implementation_names()));
  add_int_flag(cmd, kIters, st->run.iters);
  add_int_flag(cmd, kWarmup, st->run.warmup);
  cmd->add_flag("--graph", st->run.graph,
                "CUDA-graph mode: capture --graph-calls calls, time replays, per call");
  cmd->add_option("--graph-calls", st->run.graph_calls, "Calls captured per graph in --graph mode")
      ->check(CLI::Range(1, 10000))
      ->capture_default_str();
  add_int_flag(cmd, kNumSms, st->run.num_sms);
  cmd->add_option("--fixed-cost", st->run.fixed_cost,
                  "Experiment: the planner's per-segment cost F in 64-token blocks (0: the library's)")
      ->check(CLI::Range(0, 1024))
      ->capture_default_str();
  cmd->add_option("--seed", st->run.seed, "Random seed of the inputs")->capture_default_str();
  add_json_flag(cmd, st->json_path, "Write every figure and the machine description as JSON");
  cmd->add_option("--csv", st->csv_path, "Write the records as CSV");
  cmd->add_flag("--no-check", st->no_check, "Skip the correctness checks against the CPU reference");
  cmd->add_flag("--list", st->list, "Print the configurations and exit (no GPU needed)");
  cmd->add_option("--show", st->show_path,
                  "Print the table of a stored --json report and exit (no GPU needed)")
      ->check(CLI::ExistingFile);

  cmd->callback([st, &exit_code] { exit_code = run_command(*st); });
}

}  // namespace etap::cli

#else  // the benchmark is not built

namespace etap::cli {

void add_bench_command(CLI::App& app, int& exit_code) {
  CLI::App* bench = app.add_subcommand("bench", "Benchmark sweeps (not built in this configuration)");
  bench->allow_extras();
  bench->callback([&exit_code] {
    std::fprintf(stderr,
                 "etap bench is not built (ETAP_BUILD_BENCH=OFF); reconfigure with -DETAP_BUILD_BENCH=ON\n");
    exit_code = kExitFailed;
  });
}

}  // namespace etap::cli

#endif
