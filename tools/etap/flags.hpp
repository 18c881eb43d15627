// The one flag vocabulary of the etap subcommands (README, "Command line"): names, ranges, units and exit
// statuses, so that `run`, `check`, `bench` and `devices` mean the same thing by the same flag.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <etap/etap.hpp>
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
// s_q·h_q ≤ 4096 query rows per request is the library's limit (etap::validate says so, exit 4).
inline constexpr IntFlag kSq{"--s-q", "Query tokens per request (MTP when > 1)", 1, 1024};
// Variable query lengths (DecodeProblem::varlen_q): per-request lengths in [0, 4096], or random ones.
inline constexpr IntFlag kQLens{
    "--q-lens",
    "Variable query lengths: one per request, comma-separated (packed q; --s-q becomes "
    "max_seqlen_q, at least the longest)",
    0, 4096};
inline constexpr IntFlag kVarlenQ{
    "--varlen-q",
    "Variable query lengths drawn uniformly from [0, MAX] per request (0 included); "
    "--s-q becomes MAX",
    1, 4096};
inline constexpr IntFlag kHkv{"--h-kv", "KV heads (h_q a multiple of it; MLA: 1)", 1, 1024};
inline constexpr IntFlag kPageSize{"--page-size", "Tokens per KV-cache page", 1, 65536};
inline constexpr IntFlag kIters{"--iters", "Timed calls (the median is reported)", 1, 1000000};
inline constexpr IntFlag kWarmup{"--warmup", "Untimed calls before timing", 0, 1000000};
inline constexpr IntFlag kNumSms{"--num-sms", "SMs the etap schedule spreads over (0: all)", 0, 65536};
inline constexpr IntFlag kThreads{"--threads", "CPU reference threads (0: all cores)", 0, 4096};

// Query/key and value head dims, written D_QK/D_V: the pairs the library builds (etap::validate refuses
// others).
inline constexpr const char* kHeadDimsHelp = "Head dims D_QK/D_V (supported: 576/512, 512/512, 320/256)";
inline constexpr const char* kDefaultHeadDims = "576/512";

struct HeadDims {
  int32_t d_qk, d_v;
};

// "576/512" -> {576, 512}; nullopt unless two positive integers of at most 5 digits around one '/'.
inline std::optional<HeadDims> parse_head_dims(std::string_view text) {
  const auto slash = text.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  auto number = [](std::string_view digits) -> std::optional<int32_t> {
    if (digits.empty() || digits.size() > 5) return std::nullopt;
    int32_t value = 0;
    for (char c : digits) {
      if (c < '0' || c > '9') return std::nullopt;
      value = value * 10 + (c - '0');
    }
    return value > 0 ? std::optional<int32_t>(value) : std::nullopt;
  };
  const std::optional<int32_t> d_qk = number(text.substr(0, slash)), d_v = number(text.substr(slash + 1));
  if (!d_qk || !d_v) return std::nullopt;
  return HeadDims{*d_qk, *d_v};
}

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

// --head-dims D_QK/D_V into a string (run) or a comma-separated list of them (bench).
template <typename T>
CLI::Option* add_head_dims_flag(CLI::App* app, T& target) {
  CLI::Option* option = app->add_option("--head-dims", target, kHeadDimsHelp);
  if constexpr (!std::is_same_v<T, std::string>) option->delimiter(',');
  option->check(CLI::Validator(
      [](std::string& value) -> std::string {
        if (parse_head_dims(value)) return {};
        return "'" + value + "' is not D_QK/D_V: two positive integers, e.g. 576/512";
      },
      "D_QK/D_V"));
  return option->capture_default_str();
}

inline CLI::Option* add_dtype_flag(CLI::App* app, std::string& target) {
  return app->add_option("--dtype", target, "q, KV cache and out dtype")
      ->check(CLI::IsMember({"bf16", "fp16"}))
      ->capture_default_str();
}

// --kv-format: how the KV cache stores a token. One vocabulary for run and bench: dense (kv dtype = --dtype),
// fp8 (e4m3 values and one fp32 scale for the cache: vLLM's --kv-cache-dtype fp8, KvFormat::kFp8PerTensor),
// fp8-v32 (DeepSeek-V3.2's 656-byte token, KvFormat::kFp8DeepSeekV32).
inline constexpr const char* kDefaultKvFormat = "dense";
inline constexpr const char* kKvFormatHelp =
    "KV cache format: dense (--dtype values), fp8 (e4m3, one fp32 scale per cache) or fp8-v32 "
    "(DeepSeek-V3.2's "
    "656-byte token)";

// "dense" / "fp8" / "fp8-v32" -> the library's KvFormat; nullopt for anything else.
inline std::optional<KvFormat> parse_kv_format(std::string_view text) {
  if (text == "dense") return KvFormat::kDense;
  if (text == "fp8") return KvFormat::kFp8PerTensor;
  if (text == "fp8-v32") return KvFormat::kFp8DeepSeekV32;
  return std::nullopt;
}

// --kv-format into a string (run) or a comma-separated list of them (bench).
template <typename T>
CLI::Option* add_kv_format_flag(CLI::App* app, T& target) {
  CLI::Option* option = app->add_option("--kv-format", target, kKvFormatHelp);
  if constexpr (!std::is_same_v<T, std::string>) option->delimiter(',');
  option->check(CLI::Validator(
      [](std::string& value) -> std::string {
        if (parse_kv_format(value)) return {};
        return "'" + value + "' is not a KV cache format: dense, fp8 or fp8-v32";
      },
      "FORMAT"));
  return option->capture_default_str();
}

inline CLI::Option* add_json_flag(CLI::App* app, std::string& target, const char* what) {
  return app->add_option("--json", target, what);
}

// Empty when `path` can be written (an existing writable file, or a new file in a writable directory);
// otherwise the message to print. Checked before a command runs, so that its results are not lost.
std::string unwritable_reason(const std::string& path);

}  // namespace etap::cli
