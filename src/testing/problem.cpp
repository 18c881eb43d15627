// Synthetic decode problems, their device mirror and the comparison against the reference.
#include "testing/problem.hpp"

#include <cuda_runtime_api.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <numeric>
#include <random>
#include <stdexcept>
#include <thread>

#include "api/api_internal.hpp"
#include "testing/cuda.hpp"

namespace etap::testing {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr uint16_t kBF16NaN = 0x7FC0;
constexpr uint16_t kFP16NaN = 0x7E00;
constexpr uint8_t kE4M3NaN = 0x7F;
constexpr uint32_t kFP32NaNBits = 0x7FC00000;

// element_bound (problem.hpp): u = 2 × the unit roundoff of the output type.
constexpr double kBF16Unit = 1.0 / 128;   // 2 · 2^-8
constexpr double kFP16Unit = 1.0 / 1024;  // 2 · 2^-11
constexpr double kBoundFloor = 1e-6;      // an exact 0 (empty rows) must come out as 0 or nearly
constexpr double kMaxCosDiff = 5e-6;
constexpr double kMaxLseRel = 8.0 / 65536;

// splitmix64: independent seeds for every stream derived from one user seed.
uint64_t mix_seed(uint64_t seed, uint64_t stream, uint64_t index) {
  uint64_t z = seed + 0x9E3779B97F4A7C15ull * (1 + stream * 0x100000001ull + index);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Each item uses its own generator, so the data does not depend on the number of threads.
template <typename Body>
void parallel_for(int64_t count, Body body) {
  const int64_t workers = std::min<int64_t>(std::max(1u, std::thread::hardware_concurrency()), count);
  if (workers <= 1) {
    for (int64_t i = 0; i < count; ++i) body(i);
    return;
  }
  std::vector<std::thread> pool;
  for (int64_t w = 0; w < workers; ++w)
    pool.emplace_back([&, w] {
      for (int64_t i = w; i < count; i += workers) body(i);
    });
  for (auto& t : pool) t.join();
}

// N(0, std) as floats, sink(i, value): Marsaglia's polar method on the two halves of one 64-bit draw (no
// trigonometry), several times faster than std::normal_distribution for caches of 10^8 values.
template <typename Sink>
void fill_normal(int64_t count, float std_dev, uint64_t seed, Sink sink) {
  constexpr double k2Pow31 = 2147483648.0;
  std::mt19937_64 rng(seed);
  for (int64_t i = 0; i < count;) {
    const uint64_t bits = rng();
    const double u = static_cast<double>(bits >> 32) / k2Pow31 - 1.0;  // [-1, 1)
    const double v = static_cast<double>(bits & 0xFFFFFFFFu) / k2Pow31 - 1.0;
    const double s = u * u + v * v;
    if (s >= 1.0 || s == 0.0) continue;
    const double f = std_dev * std::sqrt(-2.0 * std::log(s) / s);
    sink(i++, static_cast<float>(u * f));
    if (i < count) sink(i++, static_cast<float>(v * f));
  }
}

// N(0, std) rounded to `dtype`.
void fill_random(uint16_t* dst, int64_t count, float std_dev, DType dtype, uint64_t seed) {
  const auto round = dtype == DType::kBF16 ? &reference::float_to_bf16 : &reference::float_to_fp16;
  fill_normal(count, std_dev, seed, [&](int64_t i, float value) { dst[i] = round(value); });
}

// The smallest m · 2^k >= t (t > 0) with m an integer in [8, 16]: at most 4 significant bits.
double round_up_to_4_bits(double t) {
  int exponent = 0;
  const double fraction = std::frexp(t, &exponent);  // t = fraction · 2^exponent, fraction in [0.5, 1)
  return std::ceil(fraction * 16.0) * std::ldexp(1.0, exponent - 4);
}

// One FP8 page of `rows` [token, head] rows: N(0, std) quantised (problem.hpp describes the scales).
void fill_fp8_page(uint8_t* dst, int64_t rows, int32_t d_qk, KvFormat format, float descale_k, float std_dev,
                   uint64_t seed) {
  using Token = Fp8DeepSeekV32Token;
  if (format == KvFormat::kFp8PerTensor) {
    fill_normal(rows * d_qk, std_dev, seed,
                [&](int64_t i, float value) { dst[i] = reference::float_to_fp8_e4m3(value / descale_k); });
    return;
  }
  std::vector<float> values(static_cast<std::size_t>(rows) * d_qk);  // [rows, 576]
  fill_normal(rows * d_qk, std_dev, seed, [&](int64_t i, float value) { values[i] = value; });
  for (int64_t r = 0; r < rows; ++r) {
    const float* src = values.data() + r * d_qk;
    uint8_t* token = dst + r * Token::kBytes;
    float scales[Token::kScales];
    for (int32_t g = 0; g < Token::kScales; ++g) {
      const float* group = src + g * Token::kScaleGroup;
      float amax = 0.f;
      for (int32_t c = 0; c < Token::kScaleGroup; ++c) amax = std::max(amax, std::abs(group[c]));
      scales[g] = amax > 0.f ? static_cast<float>(round_up_to_4_bits(amax / 448.0)) : 1.f;
      for (int32_t c = 0; c < Token::kScaleGroup; ++c)
        token[g * Token::kScaleGroup + c] = reference::float_to_fp8_e4m3(group[c] / scales[g]);
    }
    std::memcpy(token + Token::kScaleOffset, scales, sizeof(scales));
    for (int32_t j = 0; j < Token::kRope; ++j) {
      const uint16_t bits = reference::float_to_bf16(src[Token::kLatent + j]);
      std::memcpy(token + Token::kRopeOffset + 2 * j, &bits, sizeof(bits));
    }
  }
}

// NaN in every field of `rows` FP8 rows.
void poison_fp8_rows(uint8_t* dst, int64_t rows, int32_t d_qk, KvFormat format) {
  using Token = Fp8DeepSeekV32Token;
  if (format == KvFormat::kFp8PerTensor) {
    std::fill(dst, dst + rows * d_qk, kE4M3NaN);
    return;
  }
  for (int64_t r = 0; r < rows; ++r) {
    uint8_t* token = dst + r * Token::kBytes;
    std::fill(token, token + Token::kLatent, kE4M3NaN);
    for (int32_t g = 0; g < Token::kScales; ++g)
      std::memcpy(token + Token::kScaleOffset + 4 * g, &kFP32NaNBits, sizeof(kFP32NaNBits));
    for (int32_t j = 0; j < Token::kRope; ++j)
      std::memcpy(token + Token::kRopeOffset + 2 * j, &kBF16NaN, sizeof(kBF16NaN));
  }
}

template <typename T>
void upload_vector(const std::vector<T>& host, T** device) {
  const std::size_t bytes = host.size() * sizeof(T);
  if (bytes == 0) return;
  ETAP_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(device), bytes));
  ETAP_CUDA_CHECK(cudaMemcpy(*device, host.data(), bytes, cudaMemcpyHostToDevice));
}

void* allocate(std::size_t bytes) {
  void* ptr = nullptr;
  if (bytes > 0) ETAP_CUDA_CHECK(cudaMalloc(&ptr, bytes));
  return ptr;
}

}  // namespace

std::vector<int32_t> varlen_seqlens(int32_t batch, int32_t mean, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(mean, mean / 2.0);
  std::vector<int32_t> seqlens(std::max(batch, 0));
  for (auto& s : seqlens) s = static_cast<int32_t>(std::max<double>(1.0, std::llround(normal(rng))));
  return seqlens;
}

std::vector<int32_t> random_q_lens(int32_t batch, int32_t max_q, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<int32_t> lens(std::max(batch, 0));
  for (auto& len : lens) len = static_cast<int32_t>(rng() % static_cast<uint64_t>(std::max(max_q, 0) + 1));
  return lens;
}

int64_t HostData::out_tokens() const {
  return problem.varlen_q ? int64_t{total_q} : int64_t{problem.batch} * problem.s_q;
}

reference::HostProblem HostData::view() const {
  reference::HostProblem hp;
  hp.problem = problem;
  hp.q = q.data();
  hp.kv_cache = kv_cache.data();
  hp.kv_bytes = kv_bytes.data();
  hp.descale_k = descale_k;
  hp.block_table = block_table.data();
  hp.seqlens = seqlens.data();
  hp.softmax_scale = softmax_scale;
  hp.causal = causal;
  hp.cu_seqlens_q = problem.varlen_q ? cu_seqlens_q.data() : nullptr;
  hp.total_q = total_q;
  return hp;
}

namespace {

void fail_spec(const std::string& what) {
  throw std::invalid_argument("make_problem: " + what);
}

std::vector<int32_t> spec_seqlens(const ProblemSpec& spec) {
  return spec.seqlens.empty() ? std::vector<int32_t>(std::max(spec.batch, 0), spec.seqlen_fixed)
                              : spec.seqlens;
}

std::vector<int32_t> pages_per_request(const ProblemSpec& spec, const std::vector<int32_t>& seqlens) {
  std::vector<int32_t> pages(seqlens.size());
  for (std::size_t b = 0; b < seqlens.size(); ++b) {
    if (seqlens[b] < 0) fail_spec("seqlen of request " + std::to_string(b) + " is negative");
    pages[b] = static_cast<int32_t>((int64_t{seqlens[b]} + spec.page_size - 1) / spec.page_size);
  }
  return pages;
}

// Physical memory of this machine, 0 when unknown.
double host_memory_bytes() {
  const long pages = sysconf(_SC_PHYS_PAGES), page_bytes = sysconf(_SC_PAGE_SIZE);
  return pages > 0 && page_bytes > 0 ? static_cast<double>(pages) * page_bytes : 0.0;
}

}  // namespace

DecodeProblem problem_shape(const ProblemSpec& spec) {
  if (spec.batch < 0 || spec.s_q < 1 || spec.h_q < 1 || spec.h_kv < 1 || spec.h_q % spec.h_kv != 0)
    fail_spec("need batch >= 0, s_q >= 1 and h_q a positive multiple of h_kv >= 1");
  if (spec.page_size < 1 || spec.d_v < 1 || spec.d_v > spec.d_qk)
    fail_spec("need page_size >= 1, 1 <= d_v <= d_qk");
  if (spec.dtype != DType::kBF16 && spec.dtype != DType::kFP16) fail_spec("dtype must be bf16 or fp16");
  if (spec.kv_format != KvFormat::kDense && spec.kv_format != KvFormat::kFp8PerTensor &&
      spec.kv_format != KvFormat::kFp8DeepSeekV32)
    fail_spec("unknown kv_format " + std::to_string(static_cast<int32_t>(spec.kv_format)));
  if (spec.kv_format == KvFormat::kFp8DeepSeekV32 && (spec.d_qk != 576 || spec.d_v != 512))
    fail_spec("kv_format fp8_deepseek_v32 needs d_qk = 576 and d_v = 512");
  if (!spec.seqlens.empty() && static_cast<int32_t>(spec.seqlens.size()) != spec.batch)
    fail_spec("seqlens has " + std::to_string(spec.seqlens.size()) + " entries for batch " +
              std::to_string(spec.batch));
  if (spec.spare_pages < 0 || spec.extra_table_columns < 0)
    fail_spec("spare_pages and extra_table_columns >= 0");
  if (!spec.varlen_q && !spec.q_lens.empty()) fail_spec("q_lens needs varlen_q");
  if (spec.varlen_q) {
    if (static_cast<int32_t>(spec.q_lens.size()) != spec.batch)
      fail_spec("q_lens has " + std::to_string(spec.q_lens.size()) + " entries for batch " +
                std::to_string(spec.batch));
    for (int32_t len : spec.q_lens)
      if (len < 0 || len > spec.s_q)
        fail_spec("a query length of " + std::to_string(len) +
                  " is outside [0, s_q = " + std::to_string(spec.s_q) + "] (s_q is max_seqlen_q)");
    if (spec.q_pad_tokens < 0) fail_spec("q_pad_tokens >= 0");
  }

  const std::vector<int32_t> pages = pages_per_request(spec, spec_seqlens(spec));
  const int64_t max_pages = pages.empty() ? 0 : *std::max_element(pages.begin(), pages.end());
  const int64_t num_pages = std::accumulate(pages.begin(), pages.end(), int64_t{0}) + spec.spare_pages;
  constexpr int64_t kInt32Max = std::numeric_limits<int32_t>::max();
  if (num_pages > kInt32Max || max_pages + spec.extra_table_columns > kInt32Max)
    fail_spec("the KV cache would hold " + std::to_string(num_pages) + " pages of " +
              std::to_string(spec.page_size) + " tokens, but DecodeProblem::num_pages is int32 (at most " +
              std::to_string(kInt32Max) + "): lower the batch or the sequence lengths");

  return {.batch = spec.batch,
          .s_q = spec.s_q,
          .h_q = spec.h_q,
          .h_kv = spec.h_kv,
          .d_qk = spec.d_qk,
          .d_v = spec.d_v,
          .page_size = spec.page_size,
          .num_pages = static_cast<int32_t>(num_pages),
          .max_pages_per_seq = static_cast<int32_t>(max_pages + spec.extra_table_columns),
          .q_dtype = spec.dtype,
          .kv_dtype = spec.kv_format == KvFormat::kDense ? spec.dtype : DType::kFP8E4M3,
          .out_dtype = spec.dtype,
          .kv_format = spec.kv_format,
          .varlen_q = spec.varlen_q};
}

HostData make_problem(const ProblemSpec& spec) {
  HostData data;
  data.problem = problem_shape(spec);
  const DecodeProblem& p = data.problem;
  // q, the KV cache and the block table, with the page-id and ownership tables of the same length.
  const bool dense = p.kv_format == KvFormat::kDense;
  const int64_t row_bytes = api::kv_row_elements(p) * static_cast<int64_t>(dtype_bytes(p.kv_dtype));
  const double bytes =
      dtype_bytes(p.q_dtype) * (static_cast<double>(p.batch) * p.s_q + spec.q_pad_tokens) * p.h_q * p.d_qk +
      static_cast<double>(row_bytes) * p.num_pages * p.page_size * p.h_kv +
      sizeof(int32_t) * (static_cast<double>(p.batch) * p.max_pages_per_seq + 2.0 * p.num_pages);
  if (const double available = host_memory_bytes(); available > 0 && bytes > available)
    fail_spec("the inputs need " + std::to_string(static_cast<int64_t>(bytes / 1e9)) +
              " GB of host memory; " + "this machine has " +
              std::to_string(static_cast<int64_t>(available / 1e9)) +
              " GB: lower the batch or the sequence lengths");
  data.seqlens = spec_seqlens(spec);
  data.softmax_scale = spec.softmax_scale;
  data.causal = spec.causal;
  const std::vector<int32_t> pages = pages_per_request(spec, data.seqlens);

  std::vector<int32_t> ids(p.num_pages);
  std::iota(ids.begin(), ids.end(), 0);
  if (spec.shuffle_pages) {
    std::mt19937_64 rng(mix_seed(spec.seed, 0, 0));
    std::shuffle(ids.begin(), ids.end(), rng);
  }
  data.block_table.assign(static_cast<std::size_t>(p.batch) * p.max_pages_per_seq, kPaddingPageId);
  // owner[page] = tokens of that page some request owns (0 for spare pages).
  std::vector<int32_t> owned_tokens(p.num_pages, 0);
  int64_t next = 0;
  for (int32_t b = 0; b < p.batch; ++b)
    for (int32_t j = 0; j < pages[b]; ++j) {
      const int32_t id = ids[next++];
      data.block_table[static_cast<int64_t>(b) * p.max_pages_per_seq + j] = id;
      owned_tokens[id] = std::min(spec.page_size, data.seqlens[b] - j * spec.page_size);
    }

  // [batch, s_q, h_q, d_qk]; varlen: [total_q, h_q, d_qk], request b from token cu_seqlens_q[b], then
  // q_pad_tokens no request owns (NaN when poisoned: a kernel that reads them into padding columns must mask
  // them).
  const int64_t q_token = static_cast<int64_t>(p.h_q) * p.d_qk;
  if (p.varlen_q) {
    data.cu_seqlens_q.assign(1, 0);
    for (int32_t len : spec.q_lens) data.cu_seqlens_q.push_back(data.cu_seqlens_q.back() + len);
    data.total_q = data.cu_seqlens_q.back() + spec.q_pad_tokens;
    if (data.total_q < 1) data.total_q = 1;  // validate(): the packed q holds at least one token
  }
  data.q.resize(data.out_tokens() * q_token);
  parallel_for(p.batch, [&](int64_t b) {
    const int64_t first = p.varlen_q ? data.cu_seqlens_q[b] : b * p.s_q;
    const int64_t tokens = p.varlen_q ? spec.q_lens[b] : p.s_q;
    fill_random(data.q.data() + first * q_token, tokens * q_token, spec.input_std, spec.dtype,
                mix_seed(spec.seed, 1, b));
  });
  if (p.varlen_q) {
    uint16_t* pad = data.q.data() + int64_t{data.cu_seqlens_q.back()} * q_token;
    if (spec.poison)
      std::fill(pad, data.q.data() + data.q.size(), spec.dtype == DType::kBF16 ? kBF16NaN : kFP16NaN);
  }

  if (!dense) {
    // [num_pages, page_size, h_kv, row_bytes]
    const int64_t page_rows = int64_t{p.page_size} * p.h_kv;
    if (p.kv_format == KvFormat::kFp8PerTensor) {
      std::mt19937_64 rng(mix_seed(spec.seed, 3, 0));
      // m · 2^(E-3), m in [8, 16), 2^E the smallest power of two >= 6·input_std / 448.
      const double m = 8 + static_cast<double>(rng() % 8);
      const int exponent = static_cast<int>(std::ceil(std::log2(6.0 * spec.input_std / 448.0)));
      data.descale_k = static_cast<float>(std::ldexp(m, exponent - 3));
    }
    data.kv_bytes.resize(static_cast<std::size_t>(p.num_pages) * page_rows * row_bytes);
    parallel_for(p.num_pages, [&](int64_t page) {
      uint8_t* dst = data.kv_bytes.data() + page * page_rows * row_bytes;
      fill_fp8_page(dst, page_rows, p.d_qk, p.kv_format, data.descale_k, spec.input_std,
                    mix_seed(spec.seed, 2, page));
      const int64_t owned_rows = int64_t{owned_tokens[page]} * p.h_kv;
      if (spec.poison)
        poison_fp8_rows(dst + owned_rows * row_bytes, page_rows - owned_rows, p.d_qk, p.kv_format);
    });
    return data;
  }

  // [num_pages, page_size, h_kv, d_qk]
  const int64_t token_elems = static_cast<int64_t>(p.h_kv) * p.d_qk;
  const int64_t page_elems = p.page_size * token_elems;
  const uint16_t nan_bits = spec.dtype == DType::kBF16 ? kBF16NaN : kFP16NaN;
  data.kv_cache.resize(p.num_pages * page_elems);
  parallel_for(p.num_pages, [&](int64_t page) {
    uint16_t* dst = data.kv_cache.data() + page * page_elems;
    fill_random(dst, page_elems, spec.input_std, spec.dtype, mix_seed(spec.seed, 2, page));
    if (spec.poison) std::fill(dst + owned_tokens[page] * token_elems, dst + page_elems, nan_bits);
  });
  return data;
}

namespace {

void release(DeviceData& d) {
  for (void* ptr : {d.d_q, d.d_kv, static_cast<void*>(d.d_descale_k), static_cast<void*>(d.d_block_table),
                    static_cast<void*>(d.d_seqlens), static_cast<void*>(d.d_cu_seqlens_q), d.d_out,
                    static_cast<void*>(d.d_lse), d.d_plan, d.d_workspace})
    if (ptr) cudaFree(ptr);
  d.d_q = d.d_kv = d.d_out = d.d_plan = d.d_workspace = nullptr;
  d.d_descale_k = nullptr;
  d.d_block_table = d.d_seqlens = d.d_cu_seqlens_q = nullptr;
  d.d_lse = nullptr;
  d.plan_size = d.workspace_size = 0;
  d.args = {};
}

}  // namespace

DeviceData::~DeviceData() {
  release(*this);
}

void upload(const HostData& host, LseBase lse_base, const Options& options, DeviceData& device) {
  release(device);
  const DecodeProblem& p = host.problem;
  upload_vector(host.q, reinterpret_cast<uint16_t**>(&device.d_q));
  if (p.kv_format == KvFormat::kDense)
    upload_vector(host.kv_cache, reinterpret_cast<uint16_t**>(&device.d_kv));
  else
    upload_vector(host.kv_bytes, reinterpret_cast<uint8_t**>(&device.d_kv));
  if (p.kv_format == KvFormat::kFp8PerTensor)
    upload_vector(std::vector<float>{host.descale_k}, &device.d_descale_k);
  upload_vector(host.block_table, &device.d_block_table);
  upload_vector(host.seqlens, &device.d_seqlens);
  if (p.varlen_q) upload_vector(host.cu_seqlens_q, &device.d_cu_seqlens_q);

  // Poison: every out element the kernel fails to write stays NaN (0xFFFF in bf16/fp16, 0xFFFFFFFF in fp32).
  const auto tokens = static_cast<std::size_t>(host.out_tokens());
  const std::size_t out_bytes = tokens * p.h_q * p.d_v * dtype_bytes(p.out_dtype);
  const std::size_t lse_bytes = tokens * p.h_q * sizeof(float);
  device.d_out = allocate(out_bytes);
  device.d_lse = static_cast<float*>(allocate(lse_bytes));
  if (out_bytes) ETAP_CUDA_CHECK(cudaMemset(device.d_out, 0xFF, out_bytes));
  if (lse_bytes) ETAP_CUDA_CHECK(cudaMemset(device.d_lse, 0xFF, lse_bytes));

  device.args =
      make_dense_args(p, device.d_q, device.d_kv, device.d_block_table, device.d_seqlens, device.d_out,
                      device.d_lse, static_cast<float>(host.softmax_scale), host.causal, lse_base);
  if (p.varlen_q)
    device.args = make_varlen_args(p, host.total_q, device.d_cu_seqlens_q, device.d_q, device.d_kv,
                                   device.d_block_table, device.d_seqlens, device.d_out, device.d_lse,
                                   static_cast<float>(host.softmax_scale), host.causal, lse_base);
  device.args.descale_k = device.d_descale_k;
  device.plan_size = plan_bytes(p, options);
  device.workspace_size = workspace_bytes(p, options);
  device.d_plan = allocate(device.plan_size);
  device.d_workspace = allocate(device.workspace_size);
}

namespace {

// Keeps tokens [0, owned) of an out-shaped [tokens, h_q, row] and an lse-shaped [h_q, tokens] vector.
template <typename T>
void keep_tokens(int64_t tokens, int64_t owned, int64_t h_q, int64_t row, std::vector<T>* out,
                 std::vector<T>* lse) {
  if (out != nullptr && !out->empty()) out->resize(static_cast<std::size_t>(owned * h_q * row));
  if (lse != nullptr && !lse->empty()) {
    std::vector<T> kept(static_cast<std::size_t>(h_q * owned));
    for (int64_t h = 0; h < h_q; ++h) std::copy_n(lse->begin() + h * tokens, owned, kept.begin() + h * owned);
    *lse = std::move(kept);
  }
}

}  // namespace

int64_t padding_written(const HostData& host, const std::vector<uint16_t>& out_bits,
                        const std::vector<float>& lse) {
  if (!host.problem.varlen_q) return 0;
  const int64_t tokens = host.total_q, owned = host.cu_seqlens_q.back();
  const int64_t h_q = host.problem.h_q, d_v = host.problem.d_v;
  int64_t written = 0;
  for (std::size_t i = static_cast<std::size_t>(owned * h_q * d_v); i < out_bits.size(); ++i)
    written += out_bits[i] != 0xFFFF;
  for (int64_t h = 0; h < h_q && !lse.empty(); ++h)
    for (int64_t t = owned; t < tokens; ++t) written += !std::isnan(lse[h * tokens + t]);
  return written;
}

void drop_padding(const HostData& host, std::vector<uint16_t>* out_bits, std::vector<float>* lse) {
  if (!host.problem.varlen_q) return;
  keep_tokens<uint16_t>(host.total_q, host.cu_seqlens_q.back(), host.problem.h_q, host.problem.d_v, out_bits,
                        nullptr);
  keep_tokens<float>(host.total_q, host.cu_seqlens_q.back(), host.problem.h_q, host.problem.d_v, nullptr,
                     lse);
}

void drop_padding(const HostData& host, std::vector<double>* out, std::vector<double>* lse,
                  std::vector<double>* weighted_abs) {
  if (!host.problem.varlen_q) return;
  const int64_t tokens = host.total_q, owned = host.cu_seqlens_q.back();
  keep_tokens<double>(tokens, owned, host.problem.h_q, host.problem.d_v, out, lse);
  keep_tokens<double>(tokens, owned, host.problem.h_q, host.problem.d_v, weighted_abs, nullptr);
}

double element_bound(DType dtype, double ref, double weighted_abs) {
  const double u = dtype == DType::kFP16 ? kFP16Unit : kBF16Unit;
  return u * (weighted_abs + std::abs(ref)) + kBoundFloor;
}

std::string Comparison::describe() const {
  char line[352];
  std::snprintf(line, sizeof(line),
                "%s max_abs=%.3e rel_fro=%.3e rmse=%.3e cos_diff=%.3e lse_max_rel=%.3e worst_ratio=%.3f "
                "nonfinite=%lld lse_inf_mismatch=%lld",
                pass ? "PASS" : "FAIL", max_abs, rel_fro, rmse, cos_diff, lse_max_rel, worst_ratio,
                static_cast<long long>(nonfinite), static_cast<long long>(lse_mismatch_inf));
  return line;
}

Comparison compare(const std::vector<uint16_t>& out_bits, DType dtype, const std::vector<float>& lse,
                   const std::vector<double>& ref_out, const std::vector<double>& ref_lse,
                   const std::vector<double>& ref_weighted_abs) {
  if (out_bits.size() != ref_out.size())
    throw std::invalid_argument("compare: out has " + std::to_string(out_bits.size()) +
                                " elements, reference " + std::to_string(ref_out.size()));
  if (ref_weighted_abs.size() != ref_out.size())
    throw std::invalid_argument("compare: weighted_abs has " + std::to_string(ref_weighted_abs.size()) +
                                " elements, reference out " + std::to_string(ref_out.size()) +
                                " (pass reference::decode's weighted_abs)");
  if (!lse.empty() && lse.size() != ref_lse.size())
    throw std::invalid_argument("compare: lse has " + std::to_string(lse.size()) + " elements, reference " +
                                std::to_string(ref_lse.size()));

  Comparison c;
  double diff_sq = 0, ref_sq = 0, out_sq = 0, dot = 0;
  for (std::size_t i = 0; i < out_bits.size(); ++i) {
    const double x = reference::half_bits_to_float(out_bits[i], dtype);
    const double y = ref_out[i];
    if (!std::isfinite(x)) {
      ++c.nonfinite;
      continue;
    }
    const double d = std::abs(x - y);
    c.max_abs = std::max(c.max_abs, d);
    c.worst_ratio = std::max(c.worst_ratio, d / element_bound(dtype, y, ref_weighted_abs[i]));
    diff_sq += d * d;
    ref_sq += y * y;
    out_sq += x * x;
    dot += x * y;
  }
  const std::size_t n = out_bits.size();
  c.rmse = n ? std::sqrt(diff_sq / n) : 0.0;
  c.rel_fro = ref_sq > 0 ? std::sqrt(diff_sq / ref_sq) : (diff_sq > 0 ? kInf : 0.0);
  // FlashMLA's cosine difference, 1 − 2·x·y / (x·x + y·y): 1 − cos when the norms agree, and it also
  // penalises a norm mismatch. Meaningless when the reference is all zeros (the element bound decides then).
  const bool check_cos = ref_sq > 0;
  c.cos_diff = check_cos ? 1.0 - 2.0 * dot / (out_sq + ref_sq) : 0.0;

  for (std::size_t i = 0; i < lse.size(); ++i) {
    const double x = lse[i], y = ref_lse[i];
    if (std::isnan(x) || x == -kInf) {
      ++c.nonfinite;
      continue;
    }
    if (std::isinf(x) != std::isinf(y)) {
      ++c.lse_mismatch_inf;
      continue;
    }
    if (std::isinf(y)) continue;
    // Relative to max(|ref|, 1) so that an lse near 0 is judged by its absolute error.
    c.lse_max_rel = std::max(c.lse_max_rel, std::abs(x - y) / std::max(std::abs(y), 1.0));
  }

  c.pass = c.nonfinite == 0 && c.lse_mismatch_inf == 0 && c.worst_ratio <= 1.0 &&
           (!check_cos || c.cos_diff <= kMaxCosDiff) && c.lse_max_rel <= kMaxLseRel;
  return c;
}

}  // namespace etap::testing
