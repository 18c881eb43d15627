// The benchmark's configurations: the named sweeps of issues 4 and 10 and free-form cartesian products.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "metrics.hpp"

namespace etap::bench {

// Fixed so that every run of the varlen sweep draws the same per-request lengths.
inline constexpr uint64_t kVarlenSeed = 20250401;

// MLA's shape (DeepSeek-V2/V3/R1) is the default of every configuration: head dims kDimQK/kDimV
// (metrics.hpp) over pages of 64 tokens (FlashMLA's only page size).
inline constexpr int32_t kMlaPageSize = 64;

struct HeadDims {
  int32_t d_qk = kDimQK, d_v = kDimV;
  bool operator==(const HeadDims&) const = default;
};

struct BenchConfig {
  std::string sweep = "custom";
  int32_t batch = 16;
  int32_t seqlen = 4096;  // s_k of every request, or the mean when varlen
  int32_t h_q = 16;
  int32_t s_q = 1;
  bool causal = false;
  bool varlen = false;  // lengths from N(seqlen, seqlen/2) clipped to ≥ 1 (testing::varlen_seqlens)
  uint64_t varlen_seed = kVarlenSeed;
  std::string dtype = "bf16";  // "bf16" or "fp16": q, kv and out
  // The KV cache: "dense" (dtype values), "fp8" (e4m3, one scale: KvFormat::kFp8PerTensor) or "fp8-v32"
  // (DeepSeek-V3.2's 656-byte token), as `etap run --kv-format` names them.
  std::string kv_format = "dense";
  int32_t h_kv = 1;
  int32_t page_size = kMlaPageSize;
  int32_t d_qk = kDimQK, d_v = kDimV;
  // Variable query lengths (DecodeProblem::varlen_q): each request's uniform in [0, s_q] (s_q is then
  // max_seqlen_q; testing::random_q_lens with varlen_seed), packed q, out and lse.
  bool varlen_q = false;

  int32_t rows() const { return s_q * h_q; }  // query rows of a request
  bool operator==(const BenchConfig&) const = default;
};

inline const std::vector<std::string>& sweep_names() {
  static const std::vector<std::string> names = {"paper",    "heads", "batch", "varlen",
                                                 "coverage", "fp8",   "all"};
  return names;
}

// The paper's tables: b ∈ {16, 32}, h_q = 16, s_q = 1, s_k from 512 to 64K.
inline std::vector<BenchConfig> paper_sweep() {
  std::vector<BenchConfig> out;
  for (int32_t b : {16, 32})
    for (int32_t s_k = 512; s_k <= 65536; s_k *= 2)
      out.push_back({.sweep = "paper", .batch = b, .seqlen = s_k});
  return out;
}

// TP8/TP4/TP2/TP1 head counts × MTP depths at b=16, s_k=8K; MTP (s_q > 1) is causal.
inline std::vector<BenchConfig> heads_sweep() {
  std::vector<BenchConfig> out;
  for (int32_t h_q : {8, 16, 32, 64, 128})
    for (int32_t s_q : {1, 2, 4})
      out.push_back(
          {.sweep = "heads", .batch = 16, .seqlen = 8192, .h_q = h_q, .s_q = s_q, .causal = s_q > 1});
  return out;
}

inline std::vector<BenchConfig> batch_sweep() {
  std::vector<BenchConfig> out;
  for (int32_t b : {1, 4, 16, 64, 128, 256}) out.push_back({.sweep = "batch", .batch = b, .seqlen = 4096});
  return out;
}

inline std::vector<BenchConfig> varlen_sweep() {
  std::vector<BenchConfig> out;
  for (int32_t b : {16, 64})
    for (int32_t mean : {1024, 4096, 16384})
      out.push_back({.sweep = "varlen", .batch = b, .seqlen = mean, .varlen = true});
  return out;
}

// Issue 10's shapes beyond the paper's: more query rows than one 64-row tile (h_q = 64 with MTP, h_q = 128),
// h_kv > 1, page sizes other than 64 (SGLang's 1, vLLM's 16), head dims 512/512 and 320/256.
inline std::vector<BenchConfig> coverage_sweep() {
  const auto at_8k = [](BenchConfig c) {
    c.sweep = "coverage";
    c.batch = 16;
    c.seqlen = 8192;
    return c;
  };
  std::vector<BenchConfig> out = {at_8k({.h_q = 64}),
                                  at_8k({.h_q = 128}),
                                  at_8k({.h_q = 64, .s_q = 2, .causal = true}),
                                  {.sweep = "coverage", .batch = 128, .seqlen = 4096, .h_q = 128}};
  for (int32_t page : {1, 16, 32, 64, 128, 256}) out.push_back(at_8k({.page_size = page}));
  for (HeadDims d : {HeadDims{512, 512}, HeadDims{320, 256}})
    out.push_back(at_8k({.d_qk = d.d_qk, .d_v = d.d_v}));
  out.push_back(at_8k({.h_q = 32, .h_kv = 2}));
  // Speculative verification: up to 4 (h_q 64) and 8 (h_q 16) draft tokens per request, causal.
  out.push_back(at_8k({.h_q = 64, .s_q = 4, .causal = true, .varlen_q = true}));
  out.push_back(at_8k({.h_q = 16, .s_q = 8, .causal = true, .varlen_q = true}));
  return out;
}

// Issue 11's rows: FP8 against bf16 at b=16 h_q=16 (8K and 64K, both FP8 formats), R = 16/32/64 (h_q at
// b=16 8K: with the padded baseline, FP8 transposed vs FP8 padded), and h_q = 128.
inline std::vector<BenchConfig> fp8_sweep() {
  std::vector<BenchConfig> out;
  for (int32_t s_k : {8192, 65536})
    for (const char* kv : {"dense", "fp8", "fp8-v32"})
      out.push_back({.sweep = "fp8", .batch = 16, .seqlen = s_k, .kv_format = kv});
  for (int32_t h_q : {32, 64})
    for (const char* kv : {"dense", "fp8"})
      out.push_back({.sweep = "fp8", .batch = 16, .seqlen = 8192, .h_q = h_q, .kv_format = kv});
  for (const char* kv : {"dense", "fp8"})
    out.push_back({.sweep = "fp8", .batch = 16, .seqlen = 8192, .h_q = 128, .kv_format = kv});
  return out;
}

inline std::optional<std::vector<BenchConfig>> named_sweep(std::string_view name) {
  if (name == "paper") return paper_sweep();
  if (name == "heads") return heads_sweep();
  if (name == "batch") return batch_sweep();
  if (name == "varlen") return varlen_sweep();
  if (name == "coverage") return coverage_sweep();
  if (name == "fp8") return fp8_sweep();
  if (name == "all") {
    std::vector<BenchConfig> out;
    for (auto part :
         {paper_sweep(), heads_sweep(), batch_sweep(), varlen_sweep(), coverage_sweep(), fp8_sweep()})
      out.insert(out.end(), part.begin(), part.end());
    return out;
  }
  return std::nullopt;
}

// Free-form: every combination of the given values. `varlen_means`, when non-empty, replaces `seqlens`.
struct FreeForm {
  std::vector<int32_t> batches{16}, seqlens{4096}, h_qs{16}, s_qs{1}, varlen_means;
  std::vector<int32_t> h_kvs{1}, page_sizes{kMlaPageSize};
  std::vector<HeadDims> head_dims{HeadDims{}};
  std::vector<std::string> kv_formats{"dense"};
  bool causal = false;
  std::string dtype = "bf16";
};

inline std::vector<BenchConfig> free_form_sweep(const FreeForm& f) {
  const bool varlen = !f.varlen_means.empty();
  const std::vector<int32_t>& lengths = varlen ? f.varlen_means : f.seqlens;
  std::vector<BenchConfig> out;
  for (int32_t b : f.batches)
    for (int32_t s_k : lengths)
      for (int32_t h_q : f.h_qs)
        for (int32_t s_q : f.s_qs)
          for (int32_t h_kv : f.h_kvs)
            for (int32_t page : f.page_sizes)
              for (HeadDims d : f.head_dims)
                for (const std::string& kv : f.kv_formats)
                  out.push_back({.batch = b,
                                 .seqlen = s_k,
                                 .h_q = h_q,
                                 .s_q = s_q,
                                 .causal = f.causal,
                                 .varlen = varlen,
                                 .dtype = f.dtype,
                                 .kv_format = kv,
                                 .h_kv = h_kv,
                                 .page_size = page,
                                 .d_qk = d.d_qk,
                                 .d_v = d.d_v});
  return out;
}

// One line naming a configuration, for progress output.
inline std::string describe(const BenchConfig& c) {
  std::string s = "b=" + std::to_string(c.batch) + (c.varlen ? " s_k~" : " s_k=") + std::to_string(c.seqlen) +
                  " h_q=" + std::to_string(c.h_q) + " s_q=" + std::to_string(c.s_q);
  if (c.h_kv != 1) s += " h_kv=" + std::to_string(c.h_kv);
  if (c.page_size != kMlaPageSize) s += " page=" + std::to_string(c.page_size);
  if (c.d_qk != kDimQK || c.d_v != kDimV) s += " d=" + std::to_string(c.d_qk) + "/" + std::to_string(c.d_v);
  if (c.causal) s += " causal";
  if (c.varlen_q) s += " q_len<=" + std::to_string(c.s_q);
  if (c.dtype != "bf16") s += " " + c.dtype;
  if (c.kv_format != "dense") s += " kv=" + c.kv_format;
  return s;
}

}  // namespace etap::bench
