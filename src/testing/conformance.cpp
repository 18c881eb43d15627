// The conformance sweep (conformance.hpp).
//
// Coverage of the full sweep (issue 3), printed by `etap check --list`:
//   - grid: b ∈ {1, 2, 7, 64} × s_k ∈ {1, 17, 63, 64, 65, 1000, 4096, 65536}
//           × (h_q, s_q) ∈ {8, 16, 32, 64}×1, {8, 16, 32}×2, {8, 16}×4 (every R = s_q·h_q ≤ 64)
//           × {fixed lengths, variable lengths (b > 1)} × {bf16 with natural lse, fp16 with base-2 lse};
//     s_q > 1 is causal. Variable lengths are uniform in [1, 2·s_k] with max(1, b/16) requests of length 0.
//   - The fp64 reference dominates the run time, so grid points with b·s_k·R > 64·4096·16 (kReferenceCap) are
//     left out (b = 1 keeps every R at 65536), except the designated large_configs() (b = 2 and 7 at 65536,
//     b = 64 at 4096, R up to 64).
//   - Extras: non-causal MTP, all-empty batches, large logits (inputs with std 1.5), bf16 with base-2 lse,
//     forced SM counts (1 and 3: long unsplit parts, odd split patterns), the paper's configuration.
//   - Variable query lengths (varlen_q_configs): b ∈ {1, 4, 16, 33}, q_len uniform in [0, max] per request,
//     packed q whose tokens past the last request's are NaN (out/lse there must stay poisoned).
// Every config: NaN in cache slots past each seqlen and in spare pages, invalid ids (kPaddingPageId) in
// unused block-table columns, random page order, NaN-poisoned out, lse, plan buffer and workspace before each
// call, two runs compared bit for bit.
#include "testing/conformance.hpp"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <numbers>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <tuple>
#include <utility>

#include "testing/golden.hpp"

namespace etap::testing {
namespace {

using Clock = std::chrono::steady_clock;

constexpr int32_t kBatches[] = {1, 2, 7, 64};
constexpr int32_t kSeqlens[] = {1, 17, 63, 64, 65, 1000, 4096, 65536};
struct Heads {
  int32_t h_q, s_q;
};
constexpr Heads kHeads[] = {{8, 1}, {16, 1}, {32, 1}, {64, 1}, {8, 2}, {16, 2}, {32, 2}, {8, 4}, {16, 4}};

// Grid points above this much reference work (b·s_k·R key-row products) are not run, except kLarge.
constexpr int64_t kReferenceCap = int64_t{64} * 4096 * 16;

constexpr float kDefaultStd = 0.25f;
constexpr float kLargeStd = 1.5f;

// A kernel that runs longer than this is taken to hang; the sweep's largest call takes milliseconds.
constexpr double kKernelTimeoutSeconds = 60.0;

// Varlen configs: packed q tokens past the last request's (NaN), as an engine's padded buffer has.
constexpr int32_t kVarlenPadTokens = 3;
// 0xFF bytes are NaN in bf16, fp16 and fp32 alike.
constexpr int kPoisonByte = 0xFF;

ConformanceConfig grid_config(int32_t batch, int32_t seqlen, bool varlen, Heads heads, DType dtype) {
  ConformanceConfig c;
  c.batch = batch;
  c.seqlen = seqlen;
  c.varlen = varlen;
  c.h_q = heads.h_q;
  c.s_q = heads.s_q;
  c.dtype = dtype;
  c.causal = heads.s_q > 1;
  c.lse_base = dtype == DType::kFP16 ? LseBase::kBase2 : LseBase::kNatural;
  return c;
}

// Designated configs above kReferenceCap: long contexts at small batch, R = 64 at b = 64.
std::vector<ConformanceConfig> large_configs() {
  std::vector<ConformanceConfig> large;
  auto add = [&](int32_t b, int32_t s_k, bool varlen, Heads heads, DType dtype) {
    large.push_back(grid_config(b, s_k, varlen, heads, dtype));
  };
  add(2, 65536, false, {64, 1}, DType::kBF16);
  add(2, 65536, true, {16, 4}, DType::kFP16);
  add(7, 65536, false, {16, 1}, DType::kBF16);
  add(7, 65536, true, {8, 4}, DType::kBF16);
  add(64, 4096, false, {64, 1}, DType::kBF16);
  add(64, 4096, false, {16, 4}, DType::kBF16);
  add(64, 4096, true, {32, 1}, DType::kFP16);
  add(64, 4096, true, {32, 2}, DType::kBF16);
  return large;
}

std::vector<ConformanceConfig> extra_configs() {
  std::vector<ConformanceConfig> extra;
  // MTP without the causal mask.
  ConformanceConfig c = grid_config(7, 1000, false, {16, 2}, DType::kBF16);
  c.causal = false;
  extra.push_back(c);
  c = grid_config(2, 65, true, {8, 4}, DType::kFP16);
  c.causal = false;
  extra.push_back(c);
  // Every request empty.
  for (Heads heads : {Heads{16, 1}, Heads{16, 4}}) {
    c = grid_config(7, 0, false, heads, DType::kBF16);
    c.all_empty = true;
    extra.push_back(c);
  }
  // Logits in the hundreds.
  for (auto [b, s_k, heads] : {std::tuple{2, 1000, Heads{16, 1}}, std::tuple{7, 4096, Heads{64, 1}},
                               std::tuple{2, 65, Heads{16, 4}}}) {
    c = grid_config(b, s_k, false, heads, DType::kBF16);
    c.input_std = kLargeStd;
    extra.push_back(c);
  }
  // Base-2 lse with bf16 (the grid pairs base 2 with fp16).
  for (auto [b, s_k, varlen, heads] :
       {std::tuple{2, 65, false, Heads{16, 1}}, std::tuple{7, 1000, true, Heads{32, 2}}}) {
    c = grid_config(b, s_k, varlen, heads, DType::kBF16);
    c.lse_base = LseBase::kBase2;
    extra.push_back(c);
  }
  // One part per SM forced: a single SM streams everything; 3 SMs split in odd places.
  for (auto [b, s_k, varlen, heads, sms] :
       {std::tuple{2, 4096, false, Heads{16, 1}, 1}, std::tuple{1, 65536, false, Heads{16, 1}, 1},
        std::tuple{7, 1000, true, Heads{32, 2}, 3}, std::tuple{64, 65, true, Heads{64, 1}, 3}}) {
    c = grid_config(b, s_k, varlen, heads, DType::kBF16);
    c.num_sms = sms;
    extra.push_back(c);
  }
  // Part boundaries (plan.hpp): equal requests each longer than W, planned one whole request per part
  // (31 × 65 positions on 32 SMs, W = 63; 128 × 33 on 132 SMs, W = 32), so no partial and no combine.
  c = grid_config(31, 4096, false, {16, 1}, DType::kBF16);
  c.num_sms = 32;
  extra.push_back(c);
  extra.push_back(grid_config(128, 2048, false, {16, 1}, DType::kFP16));
  // The paper's configuration (what `etap run` times).
  extra.push_back(grid_config(16, 4096, false, {16, 1}, DType::kBF16));
  return extra;
}

// Issue 10's shapes: more than 64 query rows (row tiles), MTP up to s_q = 16 and verification-sized s_q, h_kv
// > 1, page sizes from 1 to 256 (gather, TMA chunks, whole blocks), head dims 512/512 and 320/256, in both
// dtypes, with fixed and variable lengths (empty requests included).
std::vector<ConformanceConfig> coverage_configs() {
  std::vector<ConformanceConfig> cov;
  auto add = [&](int32_t b, int32_t s_k, bool varlen, Heads heads, DType dtype) -> ConformanceConfig& {
    return cov.emplace_back(grid_config(b, s_k, varlen, heads, dtype));
  };
  // Rows: one KV head, R from 96 to 2048.
  for (DType dtype : {DType::kBF16, DType::kFP16}) {
    for (Heads heads : {Heads{128, 1}, Heads{128, 2}, Heads{64, 2}, Heads{96, 1}, Heads{16, 16}, Heads{32, 4},
                        Heads{40, 3}, Heads{16, 5}}) {
      add(2, 1000, false, heads, dtype);
      add(7, 65, true, heads, dtype);
    }
    add(64, 1000, true, {128, 1}, dtype);
    add(1, 4096, false, {128, 2}, dtype);
    add(2, 200, false, {128, 16}, dtype);  // R = 2048
    add(7, 63, true, {128, 8}, dtype);
  }
  add(2, 1000, false, {16, 16}, DType::kBF16).causal = false;
  add(2, 65536, false, {128, 1}, DType::kBF16);
  add(7, 1000, false, {128, 1}, DType::kBF16).num_sms = 3;
  // KV heads: R = s_q·h_q/h_kv rows per head.
  for (auto [h_q, s_q, h_kv] : {std::tuple{16, 1, 2}, std::tuple{24, 1, 3}, std::tuple{64, 1, 8},
                                std::tuple{8, 1, 8}, std::tuple{128, 2, 2}, std::tuple{32, 4, 2}}) {
    for (DType dtype : {DType::kBF16, DType::kFP16}) {
      add(2, 1000, false, {h_q, s_q}, dtype).h_kv = h_kv;
      add(7, 65, true, {h_q, s_q}, dtype).h_kv = h_kv;
    }
  }
  // Page sizes: gather (1, 3), TMA chunks (8, 16, 32, 48, 80), whole blocks (128, 192, 256).
  for (int32_t page : {1, 3, 8, 16, 32, 48, 80, 128, 192, 256}) {
    add(2, 1000, false, {16, 1}, DType::kBF16).page_size = page;
    add(7, 65, true, {16, 2}, DType::kFP16).page_size = page;
    add(7, 1000, true, {128, 1}, DType::kBF16).page_size = page;
    add(2, 17, false, {32, 1}, DType::kBF16).page_size = page;
  }
  add(2, 65536, false, {16, 1}, DType::kBF16).page_size = 16;
  add(1, 65536, false, {16, 1}, DType::kBF16).page_size = 1;
  add(2, 4096, false, {16, 1}, DType::kBF16).page_size = 256;
  // Head dims.
  for (auto [d_qk, d_v] : {std::pair{512, 512}, std::pair{320, 256}}) {
    for (DType dtype : {DType::kBF16, DType::kFP16}) {
      for (Heads heads : {Heads{16, 1}, Heads{64, 1}, Heads{128, 2}, Heads{8, 4}}) {
        ConformanceConfig& c = add(7, 1000, true, heads, dtype);
        c.d_qk = d_qk;
        c.d_v = d_v;
        ConformanceConfig& d = add(2, 65, false, heads, dtype);
        d.d_qk = d_qk;
        d.d_v = d_v;
      }
      ConformanceConfig& e = add(2, 4096, false, {16, 2}, dtype);
      e.d_qk = d_qk;
      e.d_v = d_v;
      e.page_size = 16;
      ConformanceConfig& f = add(7, 1000, true, {32, 1}, dtype);
      f.d_qk = d_qk;
      f.d_v = d_v;
      f.h_kv = 2;
      f.page_size = 1;
    }
  }
  return cov;
}

// Variable query lengths (speculative verification): b ∈ {1, 4, 16, 33} × (h_q, max_seqlen_q) with R up to
// 256, causal and not, q_len 0 included, page sizes 64 and 1, h_kv 1 and 2, both dtypes.
std::vector<ConformanceConfig> varlen_q_configs() {
  std::vector<ConformanceConfig> v;
  auto add = [&](int32_t b, int32_t s_k, Heads heads, DType dtype) -> ConformanceConfig& {
    ConformanceConfig& c = v.emplace_back(grid_config(b, s_k, b > 1, heads, dtype));
    c.varlen_q = true;
    c.causal = true;
    return c;
  };
  // s_k shrinks with b so that b·s_k·R stays within kReferenceCap.
  for (auto [b, s_k] : {std::pair{1, 4096}, std::pair{4, 1000}, std::pair{16, 1000}, std::pair{33, 200}})
    for (Heads heads : {Heads{16, 8}, Heads{64, 4}, Heads{128, 2}}) {
      add(b, s_k, heads, DType::kBF16);
      add(b, 65, heads, DType::kFP16).causal = false;
    }
  for (auto [b, s_k] : {std::pair{4, 1000}, std::pair{33, 200}}) {
    add(b, s_k, {16, 4}, DType::kBF16).page_size = 1;
    add(b, s_k, {128, 2}, DType::kFP16).page_size = 1;
    add(b, s_k, {32, 4}, DType::kBF16).h_kv = 2;
    add(b, 65, {128, 3}, DType::kBF16).h_kv = 2;
  }
  add(4, 4096, {64, 4}, DType::kBF16).num_sms = 3;  // splits: the combine over packed rows
  add(16, 3, {16, 8}, DType::kBF16);                // seqlen < q_len: early tokens see no key
  // FP8 caches of both formats under packed queries: one row tile (h_q 16) and several (h_q 64).
  for (KvFormat format : {KvFormat::kFp8PerTensor, KvFormat::kFp8DeepSeekV32}) {
    add(4, 1000, {16, 4}, DType::kBF16).kv_format = format;
    add(4, 1000, {64, 4}, DType::kBF16).kv_format = format;
  }
  return v;
}

// Configs that share a generated KV cache (conformance.hpp) run next to each other.
auto cache_key(const ConformanceConfig& c) {
  return std::tuple{c.dtype, c.input_std, c.batch,     c.seqlen, c.varlen, c.all_empty,
                    c.seed,  c.h_kv,      c.page_size, c.d_qk,   c.d_v,    static_cast<int32_t>(c.kv_format)};
}

std::vector<int32_t> request_lengths(const ConformanceConfig& c) {
  std::vector<int32_t> lengths(c.batch, c.all_empty ? 0 : c.seqlen);
  if (!c.varlen || c.all_empty) return lengths;
  std::mt19937_64 rng(c.seed * 7919 + c.batch);
  std::uniform_int_distribution<int32_t> length(1, 2 * c.seqlen);
  for (auto& n : lengths) n = length(rng);
  if (c.batch > 1) {
    const int32_t zeros = std::max(1, c.batch / 16);
    std::uniform_int_distribution<int32_t> index(0, c.batch - 1);
    for (int32_t z = 0; z < zeros;) {
      int32_t& n = lengths[index(rng)];
      if (n != 0) {
        n = 0;
        ++z;
      }
    }
  }
  return lengths;
}

// Varlen: each request's query tokens, uniform in [0, s_q].
std::vector<int32_t> query_lengths(const ConformanceConfig& c) {
  return random_q_lens(c.batch, c.s_q, c.seed * 15485863 + c.batch * 31 + c.s_q);
}

std::string dtype_name(DType dtype) {
  return dtype == DType::kFP16 ? "fp16" : "bf16";
}

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// The first CUDA error of a chain of calls, as text; empty when all succeeded.
struct CudaErrors {
  std::string first;
  bool check(cudaError_t err, const char* what) {
    if (err != cudaSuccess && first.empty()) first = std::string(what) + ": " + cudaGetErrorString(err);
    return err == cudaSuccess;
  }
};

cudaError_t wait_with_timeout(cudaStream_t stream, double timeout_seconds) {
  const Clock::time_point start = Clock::now();
  for (;;) {
    const cudaError_t state = cudaStreamQuery(stream);
    if (state != cudaErrorNotReady) return state;
    if (seconds_since(start) > timeout_seconds) return cudaErrorLaunchTimeout;
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
}

struct DeviceOutput {
  std::vector<uint16_t> out;
  std::vector<float> lse;
};

// What the GPU part of one config found; `fatal` when the CUDA context can no longer be trusted.
struct DeviceRuns {
  std::string error;
  bool fatal = false;
  DeviceOutput first, second;
};

DeviceRuns run_on_device(const HostData& host, LseBase base, const Options& options) {
  DeviceRuns runs;
  // Owned by a pointer so that a hung kernel's buffers can be leaked: freeing them would wait for it.
  auto device_owner = std::make_unique<DeviceData>();
  DeviceData& device = *device_owner;
  try {
    upload(host, base, options, device);
  } catch (const std::exception& e) {
    runs.error = e.what();
    return runs;
  }
  const DecodeProblem& p = host.problem;
  const auto tokens = static_cast<std::size_t>(host.out_tokens());
  const std::size_t out_elems = tokens * p.h_q * p.d_v;
  const std::size_t lse_elems = tokens * p.h_q;

  CudaErrors cuda;
  cudaStream_t stream = nullptr;
  // A blocking stream: it also waits for upload()'s copies and memsets on the legacy default stream.
  if (!cuda.check(cudaStreamCreate(&stream), "cudaStreamCreate")) {
    runs.error = cuda.first;
    return runs;
  }
  for (DeviceOutput* output : {&runs.first, &runs.second}) {
    // The plan and workspace are poisoned too: decode must read only what plan and its own kernels wrote.
    const std::pair<void*, std::size_t> buffers[] = {{device.d_out, out_elems * sizeof(uint16_t)},
                                                     {device.d_lse, lse_elems * sizeof(float)},
                                                     {device.d_plan, device.plan_size},
                                                     {device.d_workspace, device.workspace_size}};
    for (auto [ptr, bytes] : buffers)
      if (bytes) cuda.check(cudaMemsetAsync(ptr, kPoisonByte, bytes, stream), "poisoning buffers");
    if (!cuda.first.empty()) break;

    const Status planned = plan(device.args, device.d_plan, device.plan_size, stream, options);
    if (!planned.ok()) {
      runs.error = std::string("etap::plan failed (") + to_string(planned.code()) + "): " + planned.message();
      break;
    }
    const Status decoded = decode(device.args, device.d_plan, device.plan_size, device.d_workspace,
                                  device.workspace_size, stream, options);
    if (!decoded.ok()) {
      runs.error =
          std::string("etap::decode failed (") + to_string(decoded.code()) + "): " + decoded.message();
      break;
    }
    const cudaError_t finished = wait_with_timeout(stream, kKernelTimeoutSeconds);
    if (finished == cudaErrorLaunchTimeout) {
      runs.error = "the kernels did not finish within " + std::to_string(int(kKernelTimeoutSeconds)) +
                   " s (hang?); the remaining configs are not run";
      runs.fatal = true;
      device_owner.release();  // still in use by the hung kernel
      return runs;
    }
    if (!cuda.check(finished, "running plan + decode")) break;

    output->out.resize(out_elems);
    output->lse.resize(lse_elems);
    cuda.check(
        cudaMemcpy(output->out.data(), device.d_out, out_elems * sizeof(uint16_t), cudaMemcpyDeviceToHost),
        "copying out back");
    cuda.check(
        cudaMemcpy(output->lse.data(), device.d_lse, lse_elems * sizeof(float), cudaMemcpyDeviceToHost),
        "copying lse back");
    if (!cuda.first.empty()) break;
  }
  cudaStreamDestroy(stream);
  if (runs.error.empty()) runs.error = cuda.first;
  if (!runs.error.empty()) {
    // Errors such as an illegal address stick to the context: every later call would fail too.
    cudaGetLastError();
    runs.fatal = cudaDeviceSynchronize() != cudaSuccess;
  }
  return runs;
}

int64_t count_nan(const std::vector<float>& values) {
  return std::count_if(values.begin(), values.end(), [](float x) { return std::isnan(x); });
}

template <typename T>
int64_t count_bit_differences(const std::vector<T>& a, const std::vector<T>& b) {
  int64_t differing = 0;
  for (std::size_t i = 0; i < a.size(); ++i) differing += std::memcmp(&a[i], &b[i], sizeof(T)) != 0;
  return differing;
}

// Compares the device runs with the reference and fills the verdict of `result`. padding_written: out/lse
// elements of packed tokens no request owns that the kernel wrote (varlen).
void judge(const DeviceRuns& runs, DType dtype, const std::vector<double>& ref_out,
           const std::vector<double>& ref_lse, const std::vector<double>& ref_weighted_abs,
           ConformanceResult& result, int64_t padding_writes = 0) {
  result.comparison = compare(runs.first.out, dtype, runs.first.lse, ref_out, ref_lse, ref_weighted_abs);
  result.lse_unwritten = count_nan(runs.first.lse);
  const int64_t out_diff = count_bit_differences(runs.first.out, runs.second.out);
  const int64_t lse_diff = count_bit_differences(runs.first.lse, runs.second.lse);
  result.bit_identical = out_diff == 0 && lse_diff == 0;

  std::vector<std::string> reasons;
  if (padding_writes > 0)
    reasons.push_back(std::to_string(padding_writes) +
                      " out/lse elements written in packed tokens no request owns (varlen)");
  if (!result.comparison.pass)
    reasons.push_back("differs from the reference: " + result.comparison.describe());
  if (result.lse_unwritten > 0)
    reasons.push_back(std::to_string(result.lse_unwritten) + " lse entries not written (still NaN poison)");
  if (!result.bit_identical)
    reasons.push_back("second run on the same inputs differs in " + std::to_string(out_diff) + " out and " +
                      std::to_string(lse_diff) + " lse elements");
  result.pass = reasons.empty();
  for (std::size_t i = 0; i < reasons.size(); ++i) result.failure += (i ? "; " : "") + reasons[i];
}

}  // namespace

std::string ConformanceConfig::name() const {
  std::ostringstream name;
  name << "b" << batch << " sk" << (all_empty ? 0 : seqlen);
  if (all_empty) name << " empty";
  if (varlen) name << " varlen";
  name << " h" << h_q << " sq" << s_q;
  if (s_q > 1) name << (causal ? " causal" : " noncausal");
  if (h_kv != 1) name << " hkv" << h_kv;
  if (page_size != 64) name << " page" << page_size;
  if (d_qk != 576 || d_v != 512) name << " d" << d_qk << "-" << d_v;
  name << " " << dtype_name(dtype);
  if (kv_format == KvFormat::kFp8PerTensor) name << " fp8";
  if (kv_format == KvFormat::kFp8DeepSeekV32) name << " fp8v32";
  if (lse_base == LseBase::kBase2) name << " lse2";
  if (input_std != kDefaultStd) name << " std" << input_std;
  if (num_sms > 0) name << " sms" << num_sms;
  if (varlen_q) name << " qvar";
  return name.str();
}

namespace {

// FP8 caches (issue 11), in both the quick and the full sweep: both formats over tail blocks (NaN-poisoned
// slots past seqlen), split requests, every KV loader (pages of 64, 16 and 1), row tiles, h_kv 2, MTP, fp16.
// The quick sweep keeps the configs marked `quick`.
std::vector<ConformanceConfig> fp8_configs(bool quick_only) {
  std::vector<ConformanceConfig> configs;
  for (const KvFormat format : {KvFormat::kFp8PerTensor, KvFormat::kFp8DeepSeekV32}) {
    ConformanceConfig spare;  // where a config left out of the quick sweep goes
    auto add = [&](bool quick, int32_t b, int32_t s_k, bool varlen, Heads heads,
                   DType dtype) -> ConformanceConfig& {
      if (quick_only && !quick) return spare;
      ConformanceConfig& c = configs.emplace_back(grid_config(b, s_k, varlen, heads, dtype));
      c.kv_format = format;
      return c;
    };
    add(true, 1, 1, false, {16, 1}, DType::kBF16);
    add(true, 7, 65, true, {16, 1}, DType::kBF16);
    add(true, 2, 1000, false, {64, 1}, DType::kBF16);
    add(false, 7, 63, false, {32, 1}, DType::kBF16);
    add(false, 2, 4096, false, {16, 1}, DType::kBF16).lse_base = LseBase::kBase2;
    add(true, 7, 1000, true, {16, 2}, DType::kBF16).page_size = 1;   // gather
    add(true, 7, 1000, true, {16, 1}, DType::kBF16).page_size = 16;  // TMA chunks
    add(true, 2, 1000, false, {128, 1}, DType::kBF16);               // two row tiles
    add(true, 7, 65, true, {16, 1}, DType::kBF16).h_kv = 2;
    add(false, 2, 1000, false, {16, 4}, DType::kBF16);
    add(false, 1, 65536, false, {16, 1}, DType::kBF16);
    add(false, 2, 1000, false, {16, 1}, DType::kBF16).input_std = kLargeStd;
    if (format == KvFormat::kFp8PerTensor) {
      add(true, 7, 1000, true, {32, 1}, DType::kFP16);
      add(false, 7, 17, true, {16, 1}, DType::kFP16).page_size = 1;
    }
  }
  return configs;
}

}  // namespace

std::vector<ConformanceConfig> conformance_sweep(bool quick) {
  std::vector<ConformanceConfig> configs;
  if (quick) {
    auto add = [&](int32_t b, int32_t s_k, bool varlen, Heads heads, DType dtype) -> ConformanceConfig& {
      return configs.emplace_back(grid_config(b, s_k, varlen, heads, dtype));
    };
    add(1, 1, false, {16, 1}, DType::kBF16);
    add(2, 17, false, {8, 1}, DType::kBF16);
    add(7, 63, false, {32, 1}, DType::kFP16);
    add(2, 64, false, {64, 1}, DType::kBF16);
    add(7, 65, false, {8, 1}, DType::kFP16);
    add(7, 65, false, {16, 2}, DType::kBF16);
    add(2, 1, false, {8, 4}, DType::kBF16);  // seqlen < s_q: early query tokens see no key
    add(7, 17, false, {16, 4}, DType::kBF16);
    add(7, 1000, true, {16, 1}, DType::kBF16);
    add(64, 65, true, {8, 4}, DType::kFP16);
    add(64, 64, true, {32, 2}, DType::kFP16);
    add(2, 1000, false, {32, 2}, DType::kBF16);
    add(7, 1000, false, {16, 2}, DType::kBF16).causal = false;
    add(64, 1000, false, {16, 1}, DType::kFP16);
    add(2, 4096, true, {64, 1}, DType::kBF16).lse_base = LseBase::kBase2;
    add(1, 4096, false, {64, 1}, DType::kFP16);
    add(2, 4096, false, {16, 1}, DType::kBF16).num_sms = 1;
    add(2, 1000, false, {16, 1}, DType::kBF16).input_std = kLargeStd;
    ConformanceConfig& empty = add(7, 0, false, {16, 1}, DType::kBF16);
    empty.all_empty = true;
    add(1, 65536, false, {16, 1}, DType::kBF16);
    add(2, 1000, false, {128, 1}, DType::kBF16);               // two row tiles
    add(7, 65, true, {16, 16}, DType::kFP16);                  // MTP 16: four row tiles
    add(7, 65, true, {16, 1}, DType::kBF16).h_kv = 2;          // two KV heads
    add(7, 1000, true, {16, 2}, DType::kBF16).page_size = 1;   // gather
    add(7, 1000, true, {16, 1}, DType::kFP16).page_size = 16;  // TMA chunks
    add(2, 1000, false, {64, 1}, DType::kBF16).page_size = 128;
    ConformanceConfig& latent = add(7, 65, true, {16, 2}, DType::kBF16);
    latent.d_qk = latent.d_v = 512;
    ConformanceConfig& rank256 = add(2, 1000, false, {64, 1}, DType::kFP16);
    rank256.d_qk = 320;
    rank256.d_v = 256;
    add(31, 4096, false, {16, 1}, DType::kBF16).num_sms = 32;  // one whole request per part, W = 63 < 65
    for (const auto& c : fp8_configs(/*quick_only=*/true)) configs.push_back(c);
    // Variable query lengths: one tile, several tiles with splits, two KV heads at page size 1.
    add(4, 1000, true, {16, 4}, DType::kBF16).varlen_q = true;
    ConformanceConfig& qvar = add(4, 4096, true, {64, 4}, DType::kFP16);
    qvar.varlen_q = true;
    qvar.num_sms = 3;
    ConformanceConfig& qvar_gather = add(33, 65, true, {32, 2}, DType::kBF16);
    qvar_gather.varlen_q = true;
    qvar_gather.h_kv = 2;
    qvar_gather.page_size = 1;
    return configs;
  }

  for (DType dtype : {DType::kBF16, DType::kFP16})
    for (int32_t b : kBatches)
      for (int32_t s_k : kSeqlens)
        for (bool varlen : {false, true}) {
          if (varlen && b == 1) continue;
          for (Heads heads : kHeads)
            if (int64_t{b} * s_k * heads.h_q * heads.s_q <= kReferenceCap)
              configs.push_back(grid_config(b, s_k, varlen, heads, dtype));
        }
  for (const auto& c : large_configs()) configs.push_back(c);
  for (const auto& c : extra_configs()) configs.push_back(c);
  for (const auto& c : coverage_configs()) configs.push_back(c);
  for (const auto& c : fp8_configs(/*quick_only=*/false)) configs.push_back(c);
  for (const auto& c : varlen_q_configs()) configs.push_back(c);
  std::stable_sort(configs.begin(), configs.end(),
                   [](const auto& a, const auto& b) { return cache_key(a) < cache_key(b); });
  return configs;
}

std::vector<std::string> describe_sweep(bool quick) {
  if (quick)
    return {
        "quick subset (the CTest `gpu` test): 32 dense configs covering tail pages (s_k 1, 17, 63, 64, 65),",
        "variable lengths with empty requests, causal and non-causal MTP (s_q 2, 4, 16; seqlen < s_q), fp16,",
        "R = 8 … 256 (row tiles), h_kv 2, pages of 1, 16, 128 tokens, d 512/512 and 320/256, base-2 lse,",
        "large logits, an all-empty batch, one SM, b=1 at s_k=65536, and b=31 at s_k=4096 on 32 SMs (one",
        "whole request per part), 3 with variable query lengths (packed q, q_len 0 included); 15 FP8",
        "configs of both formats (tails, splits, pages of 64, 16 and 1, two row tiles, h_kv 2, fp16 for the",
        "per-tensor format)."};
  return {
      "grid: b in {1, 2, 7, 64} x s_k in {1, 17, 63, 64, 65, 1000, 4096, 65536}",
      "      x (h_q, s_q) in {8,16,32,64}x1, {8,16,32}x2, {8,16}x4 (all R = s_q*h_q <= 64; s_q > 1 causal)",
      "      x {fixed lengths, variable lengths in [1, 2*s_k] with max(1, b/16) empty requests (b > 1)}",
      "      x {bf16 with natural-log lse, fp16 with base-2 lse}",
      "      keeping the points with b*s_k*R <= 64*4096*16 (the CPU reference's cost)",
      "large: b=2 and 7 at s_k=65536, b=64 at 4096 with R up to 64, fixed and variable lengths",
      "extra: non-causal MTP, all-empty batches, large logits (std 1.5), bf16 with base-2 lse,",
      "       1 and 3 SMs (long unsplit parts, odd splits), one whole request per part (b=31 s_k=4096",
      "       on 32 SMs, b=128 s_k=2048), the paper's b=16 s_k=4096 h_q=16",
      "coverage: R from 96 to 2048 (h_q up to 128, s_q up to 16, causal and not), h_kv in {2, 3, 8},",
      "       page sizes 1, 3, 8, 16, 32, 48, 80, 128, 192, 256, head dims 512/512 and 320/256, both dtypes",
      "fp8: both FP8 formats (fp8_configs: pages 64/16/1, tails, splits, row tiles, h_kv 2, MTP, 64K)",
      "varlen q: b in {1, 4, 16, 33}, q_len uniform in [0, max] (max 8, 4, 2 at h_q 16, 64, 128; 3 and 4",
      "       at h_kv 2), causal and not, page sizes 64 and 1, h_kv 1 and 2, splits on 3 SMs, seqlen < q_len",
      "       (s_k 4096, 1000, 1000, 200 at b 1, 4, 16, 33 and 65 for the non-causal ones);",
      "       NaN q in the packed tokens past the last request's, which out/lse must leave untouched",
      "every config: NaN past each seqlen and in spare pages, invalid ids in unused block-table columns,",
      "       shuffled pages, NaN-poisoned out/lse/plan/workspace, two runs compared bit for bit"};
}

struct ConformanceRunner::Cache {
  bool valid = false;
  decltype(cache_key(ConformanceConfig{})) key;
  HostData host;

  // The problem of `c`: the cached KV cache with new queries when only the query side changed.
  const HostData& prepare(const ConformanceConfig& c) {
    if (!valid || key != cache_key(c)) {
      // The cache alone: the query side (h_q, s_q, causal) is set below for each config that shares it.
      ProblemSpec spec = problem_spec(c);
      spec.h_q = c.h_kv;
      spec.s_q = 1;
      spec.causal = false;
      spec.varlen_q = false;
      spec.q_lens.clear();
      host = HostData{};  // release the previous cache first
      host = make_problem(spec);
      key = cache_key(c);
      valid = true;
    }
    host.problem.h_q = c.h_q;
    host.problem.s_q = c.s_q;
    host.causal = c.causal;
    host.problem.varlen_q = c.varlen_q;
    host.cu_seqlens_q.clear();
    host.total_q = 0;
    int64_t tokens = int64_t{c.batch} * c.s_q, owned = tokens;
    if (c.varlen_q) {
      host.cu_seqlens_q.assign(1, 0);
      for (int32_t len : query_lengths(c)) host.cu_seqlens_q.push_back(host.cu_seqlens_q.back() + len);
      owned = host.cu_seqlens_q.back();
      host.total_q = static_cast<int32_t>(owned) + kVarlenPadTokens;
      tokens = host.total_q;
    }
    const int64_t token_elems = int64_t{c.h_q} * host.problem.d_qk;
    host.q.resize(static_cast<std::size_t>(tokens * token_elems));
    std::mt19937_64 rng(c.seed * 104729 + static_cast<uint64_t>(c.h_q) * 131 + c.s_q);
    std::normal_distribution<float> normal(0.f, c.input_std);
    for (auto& x : host.q) x = reference::float_to_half_bits(normal(rng), c.dtype);
    // Varlen: packed tokens no request owns are NaN; the kernel loads some into padding columns.
    std::fill(host.q.begin() + owned * token_elems, host.q.end(),
              reference::float_to_half_bits(std::numeric_limits<float>::quiet_NaN(), c.dtype));
    return host;
  }
};

ProblemSpec problem_spec(const ConformanceConfig& c) {
  ProblemSpec spec;
  spec.batch = c.batch;
  spec.s_q = c.s_q;
  spec.h_q = c.h_q;
  spec.h_kv = c.h_kv;
  spec.page_size = c.page_size;
  spec.d_qk = c.d_qk;
  spec.d_v = c.d_v;
  spec.seqlens = request_lengths(c);
  spec.dtype = c.dtype;
  spec.kv_format = c.kv_format;
  spec.causal = c.causal;
  spec.input_std = c.input_std;
  spec.seed = c.seed;
  if (c.varlen_q) {
    spec.varlen_q = true;
    spec.q_lens = query_lengths(c);
    spec.q_pad_tokens = kVarlenPadTokens;
  }
  return spec;
}

ConformanceRunner::ConformanceRunner(int reference_threads)
    : cache_(std::make_unique<Cache>()), reference_threads_(reference_threads) {}

ConformanceRunner::~ConformanceRunner() = default;

ConformanceResult ConformanceRunner::run(const ConformanceConfig& config) {
  ConformanceResult result;
  result.name = config.name();
  if (!fatal_.empty()) {
    result.failure = "not run after an earlier fatal CUDA error: " + fatal_;
    return result;
  }

  const HostData& host = cache_->prepare(config);
  Options options;
  options.num_sms = config.num_sms;

  Clock::time_point start = Clock::now();
  const DeviceRuns runs = run_on_device(host, config.lse_base, options);
  result.gpu_seconds = seconds_since(start);
  if (!runs.error.empty()) {
    result.failure = runs.error;
    if (runs.fatal) fatal_ = runs.error;
    return result;
  }

  start = Clock::now();
  std::vector<double> ref_out, ref_lse, ref_weighted_abs;
  reference::decode(host.view(), ref_out, ref_lse, config.lse_base, reference_threads_, &ref_weighted_abs);
  result.reference_seconds = seconds_since(start);
  if (!host.problem.varlen_q) {
    judge(runs, config.dtype, ref_out, ref_lse, ref_weighted_abs, result);
    return result;
  }
  // Varlen: the packed tokens past the last request's must keep their poison; the rest is compared.
  const int64_t padding_writes = padding_written(host, runs.first.out, runs.first.lse);
  DeviceRuns owned = runs;
  for (DeviceOutput* output : {&owned.first, &owned.second}) drop_padding(host, &output->out, &output->lse);
  drop_padding(host, &ref_out, &ref_lse, &ref_weighted_abs);
  judge(owned, config.dtype, ref_out, ref_lse, ref_weighted_abs, result, padding_writes);
  return result;
}

ConformanceResult ConformanceRunner::run_golden(const std::string& golden_dir, const std::string& case_name,
                                                LseBase base) {
  ConformanceResult result;
  result.name = "golden " + case_name + (base == LseBase::kBase2 ? " lse2" : " lse_e");
  if (!fatal_.empty()) {
    result.failure = "not run after an earlier fatal CUDA error: " + fatal_;
    return result;
  }
  GoldenCase golden;
  try {
    golden = load_golden(golden_dir, case_name);
  } catch (const std::exception& e) {
    result.failure = std::string("cannot load the golden case: ") + e.what() +
                     " (pass the directory of the golden files with --golden-dir)";
    return result;
  }
  // The stored lse is in golden.base; convert it to the requested base (exact enough in fp64).
  if (golden.base != base) {
    const double factor = base == LseBase::kBase2 ? std::numbers::log2e : std::numbers::ln2;
    for (double& l : golden.lse)
      if (std::isfinite(l)) l *= factor;
  }

  const Clock::time_point start = Clock::now();
  const DeviceRuns runs = run_on_device(golden.data, base, Options{});
  result.gpu_seconds = seconds_since(start);
  if (!runs.error.empty()) {
    result.failure = runs.error;
    if (runs.fatal) fatal_ = runs.error;
    return result;
  }
  // The golden out/lse are the reference values; the error bound's Σ p·|v| comes from our CPU reference.
  const Clock::time_point reference_start = Clock::now();
  std::vector<double> cpu_out, cpu_lse, weighted_abs;
  reference::decode(golden.data.view(), cpu_out, cpu_lse, base, reference_threads_, &weighted_abs);
  result.reference_seconds = seconds_since(reference_start);
  judge(runs, golden.data.problem.out_dtype, golden.out, golden.lse, weighted_abs, result);
  return result;
}

ConformanceResult run_config(const ConformanceConfig& config, int reference_threads) {
  ConformanceRunner runner(reference_threads);
  return runner.run(config);
}

}  // namespace etap::testing
