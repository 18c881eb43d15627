// Synthetic decode problems for tests, `etap check`, `etap run` and the benchmark: random inputs with the
// poison of docs/PERF.md's "Correctness method" (NaN past each seqlen, invalid ids in unused block-table
// entries, random page order), in host memory, plus a device mirror.
#pragma once

#include <cstdint>
#include <etap/etap.hpp>
#include <etap/reference.hpp>
#include <string>
#include <vector>

namespace etap::testing {

struct ProblemSpec {
  int32_t batch = 1, s_q = 1, h_q = 16, h_kv = 1;
  int32_t d_qk = 576, d_v = 512, page_size = 64;
  std::vector<int32_t> seqlens;  // one per request; if empty, every request gets seqlen_fixed
  int32_t seqlen_fixed = 0;
  DType dtype = DType::kBF16;                 // q, out and a dense kv
  KvFormat kv_format = KvFormat::kDense;      // FP8 formats: kv_dtype kFP8E4M3 (problem_shape)
  float input_std = 0.25f;                    // N(0, std) for q and kv
  double softmax_scale = 0.1352337788608801;  // DeepSeek-V3
  bool causal = false;
  uint64_t seed = 1;
  bool shuffle_pages = true;        // random page order
  int32_t spare_pages = 1;          // NaN-filled pages no request owns
  int32_t extra_table_columns = 1;  // unused block-table columns (kPaddingPageId)
  bool poison = true;               // NaN in unowned slots
  // Variable query lengths (DecodeProblem::varlen_q): query tokens per request, each in [0, s_q] (s_q is
  // then max_seqlen_q); q, out and lse are packed (make_varlen_args). Empty: every request has s_q tokens.
  std::vector<int32_t> q_lens;
  bool varlen_q = false;
  int32_t q_pad_tokens = 1;  // varlen: packed tokens past the last request's (NaN q when poisoned)
};

// Query lengths drawn uniformly from [0, max_q] (0 included), fixed seed: the varlen conformance configs.
std::vector<int32_t> random_q_lens(int32_t batch, int32_t max_q, uint64_t seed);

// FP8 caches (make_problem): values drawn from N(0, input_std) and quantised, with scales m · 2^k, m a
// random integer in [8, 16) — at most 4 significant bits, so that every e4m3 · scale is exact in bf16 and
// the bf16 tolerance applies to a kernel that dequantises into bf16.
//   kFp8PerTensor: one scale m · 2^(E-3), 2^E the smallest power of two >= 6·input_std / 448.
//   kFp8DeepSeekV32: per token and 128 channels, the smallest such number >= amax / 448 (FlashMLA rounds
//   amax / 448 up to a power of two); RoPE in bf16.
// Poison in unowned slots: e4m3 bytes 0x7F (NaN), and in a 656-byte token fp32 NaN scales and bf16 NaN RoPE.

// Seqlens drawn from N(mean, mean/2), clipped to >= 1, fixed seed (the benchmark's varlen sweep).
std::vector<int32_t> varlen_seqlens(int32_t batch, int32_t mean, uint64_t seed);

struct HostData {
  DecodeProblem problem;
  std::vector<uint16_t> q, kv_cache;  // kv_cache: dense format only
  std::vector<uint8_t> kv_bytes;      // FP8 formats: the cache, rows of kv row bytes (reference.hpp)
  float descale_k = 1.f;              // kFp8PerTensor: the cache's scale
  std::vector<int32_t> block_table, seqlens;
  double softmax_scale = 0.0;
  bool causal = false;
  std::vector<int32_t> cu_seqlens_q;    // varlen: [batch + 1] packed query offsets
  int32_t total_q = 0;                  // varlen: packed tokens of q, out and lse
  reference::HostProblem view() const;  // points into this object
  // Tokens of out and lse: total_q (varlen) or batch · s_q.
  int64_t out_tokens() const;
};

// The shape make_problem(spec) builds (num_pages, max_pages_per_seq included), without building it. Throws
// std::invalid_argument, saying why, for a spec that is inconsistent or whose page count does not fit
// DecodeProblem::num_pages (int32).
DecodeProblem problem_shape(const ProblemSpec& spec);

// Throws std::invalid_argument as problem_shape does, and when the inputs would not fit in host memory.
HostData make_problem(const ProblemSpec& spec);

// Device copies of a HostData plus out/lse buffers, plan buffer and workspace, freed on destruction.
struct DeviceData {
  DecodeArgs args;  // dense strides, pointing at the buffers below
  void* d_q = nullptr;
  void* d_kv = nullptr;
  float* d_descale_k = nullptr;  // kFp8PerTensor: one float
  int32_t* d_block_table = nullptr;
  int32_t* d_seqlens = nullptr;
  int32_t* d_cu_seqlens_q = nullptr;  // varlen
  void* d_out = nullptr;
  float* d_lse = nullptr;
  void* d_plan = nullptr;
  std::size_t plan_size = 0;
  void* d_workspace = nullptr;
  std::size_t workspace_size = 0;

  DeviceData() = default;
  DeviceData(const DeviceData&) = delete;
  DeviceData& operator=(const DeviceData&) = delete;
  ~DeviceData();
};

// Uploads `host` (throws testing::CudaError on a CUDA failure) and sizes plan/workspace for `options`.
void upload(const HostData& host, LseBase lse_base, const Options& options, DeviceData& device);

// The per-element error a correct kernel may show: |out − ref| ≤ element_bound(dtype, ref, weighted_abs),
// weighted_abs = Σ p_i·|v_i| from reference::decode. The kernel rounds the softmax weights p_i to `dtype`
// before P·V (error ≤ ε·Σ p_i·|v_i|, ε the unit roundoff: 2^-8 for bf16, 2^-11 for fp16) and rounds out to
// `dtype` (≤ ε·|ref|). The bound is u·(weighted_abs + |ref|) + 1e-6 with u = 2ε: a factor 2 for fp32
// accumulation and logits and the normaliser summed from unrounded p.
double element_bound(DType dtype, double ref, double weighted_abs);

// Error statistics of a kernel output against the fp64 reference (docs/PERF.md, "Correctness method"). The
// verdict: every element within element_bound, cos_diff ≤ 5e-6, lse within 8/65536 relative, no NaN/Inf, +inf
// lse exactly where the reference has one. max_abs, rel_fro, rmse and cos_diff are the numbers FlashMLA
// reports.
struct Comparison {
  double max_abs = 0, rel_fro = 0, rmse = 0, cos_diff = 0, lse_max_rel = 0;
  double worst_ratio = 0;        // max over elements of |out − ref| / element_bound (≤ 1 passes)
  int64_t nonfinite = 0;         // NaN/Inf in out (always a failure)
  int64_t lse_mismatch_inf = 0;  // rows where exactly one of kernel/ref lse is +inf
  bool pass = false;
  std::string describe() const;
};

// out_bits: [batch, s_q, h_q, d_v] 16-bit values of `dtype`; lse: [batch, h_q, s_q] floats (empty: not
// checked). Varlen: [total_q, h_q, d_v] and [h_q, total_q], where the packed tokens past
// cu_seqlens_q[batch] must stay as upload() poisoned them (NaN): the caller drops them first
// (varlen_owned_rows). ref_out, ref_lse, ref_weighted_abs: reference::decode's out, lse and weighted_abs.
// Varlen: the packed tokens past cu_seqlens_q[batch] belong to no request. padding_written counts the out
// and lse elements there that are no longer upload()'s poison (NaN bits; a kernel must not write them);
// drop_padding removes those tokens from out-shaped ([tokens, h_q, d_v]) and lse-shaped ([h_q, tokens])
// vectors, so that compare() sees only rows some request owns. Both do nothing for a fixed-length problem.
int64_t padding_written(const HostData& host, const std::vector<uint16_t>& out_bits,
                        const std::vector<float>& lse);
void drop_padding(const HostData& host, std::vector<uint16_t>* out_bits, std::vector<float>* lse);
void drop_padding(const HostData& host, std::vector<double>* out, std::vector<double>* lse,
                  std::vector<double>* weighted_abs);

Comparison compare(const std::vector<uint16_t>& out_bits, DType dtype, const std::vector<float>& lse,
                   const std::vector<double>& ref_out, const std::vector<double>& ref_lse,
                   const std::vector<double>& ref_weighted_abs);

}  // namespace etap::testing
