// The one flag vocabulary of the etap subcommands (README, "Command line"): names, ranges, units and exit
// statuses, so that `run`, `check`, `bench` and `devices` mean the same thing by the same flag.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace etap::cli {

// Exit statuses of every subcommand.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;       // a check failed, or an error while running
inline constexpr int kExitNoGpu = 2;        // no compute-capability-9.0 GPU (check, bench, --require-gpu)
inline constexpr int kExitCannotWrite = 3;  // an output file (--json, --csv) cannot be written; checked first
inline constexpr int kExitRefused = 4;      // the problem is refused before running (etap::validate's reason)
// Flag errors exit with CLI11's statuses: 105 a value out of range, 106 a missing value, 109 an unknown flag.

inline constexpr const char* kExitStatusHelp =
    "Exit status:\n"
    "  0    success\n"
    "  1    a check failed, or an error while running\n"
    "  2    no compute-capability-9.0 GPU (check, bench, run/devices --require-gpu)\n"
    "  3    an output file (--json, --csv) cannot be written (checked before anything runs)\n"
    "  4    the problem is refused before running (the library's validation says why)\n"
    "  105  a flag value out of range, 109 an unknown flag (CLI11)";

// An integer flag: its names, help and inclusive range. `tokens`: the value is a token count that may carry
// a K (x1024) or M (x1048576) suffix.
struct IntFlag {
  const char* names;
  const char* help;
  int64_t min, max;
  bool tokens = false;
};

inline constexpr int64_t kMaxTokens = int64_t{1} << 24;  // 16M tokens per request
inline constexpr IntFlag kBatch{"-b,--batch", "Requests per call", 1, 65536};
inline constexpr IntFlag kSeqlen{"-s,--seqlen", "KV tokens per request (tokens; K = 1024, M = 1048576)", 1,
                                 kMaxTokens, true};
inline constexpr IntFlag kVarlen{
    "--varlen",
    "Variable lengths: per-request tokens from N(MEAN, MEAN/2), clipped to >= 1, "
    "instead of --seqlen (tokens; K and M as for --seqlen)",
    1, kMaxTokens, true};
inline constexpr IntFlag kHq{"--h-q", "Query heads", 1, 1024};
inline constexpr IntFlag kSq{"--s-q", "Query tokens per request (MTP when > 1)", 1, 64};
inline constexpr IntFlag kIters{"--iters", "Timed calls (the median is reported)", 1, 1000000};
inline constexpr IntFlag kWarmup{"--warmup", "Untimed calls before timing", 0, 1000000};
inline constexpr IntFlag kNumSms{"--num-sms", "SMs the etap schedule spreads over (0: all)", 0, 65536};
inline constexpr IntFlag kThreads{"--threads", "CPU reference threads (0: all cores)", 0, 4096};

// "4096" -> 4096, "8K" / "8k" -> 8192, "1M" -> 1048576; nullopt for anything else.
inline std::optional<int64_t> parse_tokens(std::string_view text) {
  int64_t scale = 1;
  if (!text.empty() && (text.back() == 'K' || text.back() == 'k')) scale = 1024;
  if (!text.empty() && (text.back() == 'M' || text.back() == 'm')) scale = 1024 * 1024;
  if (scale != 1) text.remove_suffix(1);
  if (text.empty() || text.size() > 12) return std::nullopt;
  int64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + (c - '0');
  }
  return value * scale;
}

template <typename T>
CLI::Option* add_int_flag(CLI::App* app, const IntFlag& flag, T& target) {
  CLI::Option* option = app->add_option(flag.names, target, flag.help);
  if constexpr (!std::is_arithmetic_v<T>) option->delimiter(',');
  if (flag.tokens)
    option->transform(CLI::Validator(
        [](std::string& value) -> std::string {
          const std::optional<int64_t> tokens = parse_tokens(value);
          if (!tokens)
            return "'" + value +
                   "' is not a token count: digits with an optional K (x1024) or M (x1048576) suffix, e.g. "
                   "4096, 8K, 1M";
          value = std::to_string(*tokens);
          return {};
        },
        "TOKENS"));
  option->check(CLI::Range(flag.min, flag.max));
  return option->capture_default_str();
}

inline CLI::Option* add_dtype_flag(CLI::App* app, std::string& target) {
  return app->add_option("--dtype", target, "q, KV cache and out dtype")
      ->check(CLI::IsMember({"bf16", "fp16"}))
      ->capture_default_str();
}

inline CLI::Option* add_json_flag(CLI::App* app, std::string& target, const char* what) {
  return app->add_option("--json", target, what);
}

// Empty when `path` can be written (an existing writable file, or a new file in a writable directory);
// otherwise the message to print. Checked before a command runs, so that its results are not lost.
std::string unwritable_reason(const std::string& path);

}  // namespace etap::cli
