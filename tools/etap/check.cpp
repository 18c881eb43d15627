// `etap check`: the conformance sweep (src/testing/conformance.hpp) and the golden cases on the GPU.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "commands.hpp"
#include "flags.hpp"
#include "gpu.hpp"
#include "testing/conformance.hpp"
#include "testing/cuda.hpp"
#include "testing/golden.hpp"

namespace etap::cli {
namespace {

using Clock = std::chrono::steady_clock;

struct CheckFlags {
  bool quick = false;
  std::string filter;
  std::string json_path;
  std::string golden_dir;  // empty: default_golden_dir()
  bool no_golden = false;
  bool list = false;
  int threads = 0;
};

// The golden cases of an installed etap lie at ETAP_GOLDEN_INSTALL_RELATIVE from its executable
// (share/etap/golden); a build-tree etap falls back to the source tree's copy.
std::string default_golden_dir() {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    const fs::path installed = (exe.parent_path() / ETAP_GOLDEN_INSTALL_RELATIVE).lexically_normal();
    if (fs::is_directory(installed, ec)) return installed.string();
  }
  return ETAP_GOLDEN_SOURCE_DIR;
}

int count_golden_files(const std::string& dir) {
  int found = 0;
  for (const auto& name : testing::golden_case_names())
    found += std::filesystem::exists(std::filesystem::path(dir) / (name + ".json"));
  return found;
}

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

std::string json_escape(const std::string& text) {
  std::string escaped;
  for (char ch : text) {
    switch (ch) {
      case '"':
        escaped += "\\\"";
        break;
      case '\\':
        escaped += "\\\\";
        break;
      case '\n':
        escaped += "\\n";
        break;
      case '\t':
        escaped += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(ch) < 0x20) {
          char code[8];
          std::snprintf(code, sizeof(code), "\\u%04x", ch);
          escaped += code;
        } else {
          escaped += ch;
        }
    }
  }
  return escaped;
}

// JSON has no NaN or infinity: such values become null.
std::string json_number(double x) {
  if (!std::isfinite(x)) return "null";
  char text[32];
  std::snprintf(text, sizeof(text), "%.6g", x);
  return text;
}

bool write_json(const std::string& path, const std::string& device, bool quick,
                const std::vector<testing::ConformanceResult>& results, int passed, int failed,
                double seconds) {
  std::ofstream file(path);
  file << "{\n  \"device\": \"" << json_escape(device) << "\",\n  \"sweep\": \"" << (quick ? "quick" : "full")
       << "\",\n  \"passed\": " << passed << ",\n  \"failed\": " << failed
       << ",\n  \"seconds\": " << json_number(seconds) << ",\n  \"results\": [\n";
  for (std::size_t i = 0; i < results.size(); ++i) {
    const auto& r = results[i];
    const auto& c = r.comparison;
    file << "    {\"name\": \"" << json_escape(r.name) << "\", \"pass\": " << (r.pass ? "true" : "false")
         << ", \"max_abs\": " << json_number(c.max_abs) << ", \"rel_fro\": " << json_number(c.rel_fro)
         << ", \"rmse\": " << json_number(c.rmse) << ", \"cos_diff\": " << json_number(c.cos_diff)
         << ", \"lse_max_rel\": " << json_number(c.lse_max_rel) << ", \"nonfinite\": " << c.nonfinite
         << ", \"bit_identical\": " << (r.bit_identical ? "true" : "false")
         << ", \"gpu_seconds\": " << json_number(r.gpu_seconds)
         << ", \"reference_seconds\": " << json_number(r.reference_seconds) << ", \"failure\": \""
         << json_escape(r.failure) << "\"}" << (i + 1 < results.size() ? "," : "") << "\n";
  }
  file << "  ]\n}\n";
  file.close();
  return static_cast<bool>(file);
}

void print_result(std::size_t index, std::size_t total, const testing::ConformanceResult& r) {
  const int width = static_cast<int>(std::to_string(total).size());
  std::printf("[%*zu/%zu] %-44s %s", width, index, total, r.name.c_str(), r.pass ? "PASS" : "FAIL");
  if (r.pass || r.failure.rfind("differs", 0) == 0)
    std::printf("  max_abs %.2e  rel_fro %.2e  lse_rel %.2e", r.comparison.max_abs, r.comparison.rel_fro,
                r.comparison.lse_max_rel);
  std::printf("  (%.1f s)\n", r.gpu_seconds + r.reference_seconds);
  if (!r.pass) std::printf("        %s\n", r.failure.c_str());
  std::fflush(stdout);
}

int run_check(CheckFlags f) {
  if (!f.json_path.empty())
    if (const std::string reason = unwritable_reason(f.json_path); !reason.empty()) {
      std::fprintf(stderr, "etap check: %s\n", reason.c_str());
      return kExitCannotWrite;
    }
  if (f.golden_dir.empty()) f.golden_dir = default_golden_dir();
  std::vector<testing::ConformanceConfig> configs;
  for (const auto& c : testing::conformance_sweep(f.quick))
    if (f.filter.empty() || c.name().find(f.filter) != std::string::npos) configs.push_back(c);
  std::vector<std::pair<std::string, LseBase>> goldens;
  if (!f.no_golden)
    for (const auto& name : testing::golden_case_names())
      for (LseBase base : {LseBase::kNatural, LseBase::kBase2}) {
        const std::string label = "golden " + name + (base == LseBase::kBase2 ? " lse2" : " lse_e");
        if (f.filter.empty() || label.find(f.filter) != std::string::npos) goldens.emplace_back(name, base);
      }
  const std::size_t total = configs.size() + goldens.size();

  if (f.list) {
    for (const auto& line : testing::describe_sweep(f.quick)) std::printf("%s\n", line.c_str());
    for (const auto& c : configs) std::printf("  %s\n", c.name().c_str());
    for (const auto& [name, base] : goldens)
      std::printf("  golden %s %s\n", name.c_str(), base == LseBase::kBase2 ? "lse2" : "lse_e");
    if (!f.no_golden)
      std::printf("golden cases: %s (%d cases)\n", f.golden_dir.c_str(), count_golden_files(f.golden_dir));
    std::printf("%zu configs and %zu golden checks\n", configs.size(), goldens.size());
    return kExitOk;
  }

  const GpuChoice gpu = find_sm90_gpu();
  if (!gpu.found()) {
    std::fprintf(
        stderr,
        "etap check: no compute-capability-9.0 GPU found (%s).\n"
        "The conformance sweep runs the ETAP kernel, so it needs a Hopper (sm_90) GPU; on the device\n"
        "machine, tools/gpu-check.sh runs it. `etap check --list` shows what it covers.\n",
        gpu.reason.c_str());
    return kExitNoGpu;
  }
  if (total == 0) {
    std::fprintf(stderr, "etap check: no config matches --filter \"%s\" (see `etap check --list`)\n",
                 f.filter.c_str());
    return kExitFailed;
  }
  ETAP_CUDA_CHECK(cudaSetDevice(gpu.device));
  const std::string device = describe_gpu(gpu.device, gpu.prop);
  const unsigned threads = f.threads > 0 ? f.threads : std::max(1u, std::thread::hardware_concurrency());
  std::printf(
      "etap check on %s: %zu configs (%s sweep%s) and %zu golden checks; CPU reference on %u threads\n",
      device.c_str(), configs.size(), f.quick ? "quick" : "full", f.filter.empty() ? "" : ", filtered",
      goldens.size(), threads);
  std::fflush(stdout);

  const Clock::time_point start = Clock::now();
  testing::ConformanceRunner runner(static_cast<int>(threads));
  std::vector<testing::ConformanceResult> results;
  for (const auto& [name, base] : goldens) {
    results.push_back(runner.run_golden(f.golden_dir, name, base));
    print_result(results.size(), total, results.back());
  }
  for (const auto& c : configs) {
    results.push_back(runner.run(c));
    print_result(results.size(), total, results.back());
  }

  int passed = 0, failed = 0;
  for (const auto& r : results) (r.pass ? passed : failed)++;
  const double seconds = seconds_since(start);
  if (failed > 0) {
    std::printf("failed:\n");
    for (const auto& r : results)
      if (!r.pass) std::printf("  %s: %s\n", r.name.c_str(), r.failure.c_str());
  }
  std::printf("etap check: %d passed, %d failed (%.0f s)\n", passed, failed, seconds);
  if (!f.json_path.empty()) {
    if (!write_json(f.json_path, device, f.quick, results, passed, failed, seconds)) {
      std::fprintf(stderr, "etap check: cannot write %s\n", f.json_path.c_str());
      return kExitCannotWrite;
    }
    std::printf("results written to %s\n", f.json_path.c_str());
  }
  return failed == 0 ? kExitOk : kExitFailed;
}

}  // namespace

void add_check_command(CLI::App& app, int& exit_code) {
  auto flags = std::make_shared<CheckFlags>();
  CLI::App* check = app.add_subcommand(
      "check", "Conformance sweep of the GPU kernel against the CPU reference and the golden cases");
  check->add_flag("--quick", flags->quick, "The ~20-config subset that CTest runs");
  check->add_option("--filter", flags->filter, "Only configs whose name contains this text (see --list)");
  add_json_flag(check, flags->json_path, "Also write the results to this JSON file");
  check->add_option("--golden-dir", flags->golden_dir,
                    "Directory of the golden cases (default: share/etap/golden of the installation, or the "
                    "source tree's tests/data/golden; `--list` shows which)");
  check->add_flag("--no-golden", flags->no_golden, "Skip the golden cases");
  check->add_flag("--list", flags->list, "Print what the sweep covers and its configs, run nothing");
  add_int_flag(check, kThreads, flags->threads);
  check->footer(kExitStatusHelp);
  check->callback([flags, &exit_code] { exit_code = run_check(*flags); });
}

}  // namespace etap::cli
