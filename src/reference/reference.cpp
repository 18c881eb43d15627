// CPU reference for MLA decode (include/etap/reference.hpp).
#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <cmath>
#include <cstring>
#include <etap/reference.hpp>
#include <exception>
#include <limits>
#include <mutex>
#include <numbers>
#include <stdexcept>
#include <string>
#include <thread>

namespace etap::reference {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr uint32_t kFloatAbsMask = 0x7FFFFFFFu;
constexpr uint32_t kFloatInfBits = 0x7F800000u;
// Query rows per work item: small enough to spread one long request over all threads, large enough that
// each converted key block is reused by several rows.
constexpr int32_t kRowsPerItem = 16;
// Keys converted to double at a time.
constexpr int32_t kKeyBlock = 64;

using HalfTable = std::array<double, 65536>;

const HalfTable& half_table(DType dtype) {
  static const HalfTable bf16 = [] {
    HalfTable t{};
    for (uint32_t i = 0; i < t.size(); ++i) t[i] = bf16_to_float(static_cast<uint16_t>(i));
    return t;
  }();
  static const HalfTable fp16 = [] {
    HalfTable t{};
    for (uint32_t i = 0; i < t.size(); ++i) t[i] = fp16_to_float(static_cast<uint16_t>(i));
    return t;
  }();
  return dtype == DType::kBF16 ? bf16 : fp16;
}

bool is_half_dtype(DType dtype) {
  return dtype == DType::kBF16 || dtype == DType::kFP16;
}

const std::array<double, 256>& e4m3_table() {
  static const std::array<double, 256> table = [] {
    std::array<double, 256> t{};
    for (uint32_t i = 0; i < t.size(); ++i) t[i] = fp8_e4m3_to_float(static_cast<uint8_t>(i));
    return t;
  }();
  return table;
}

// Round to nearest, ties to even, of a non-negative value already scaled to the integer grid.
double round_half_even(double x) {
  const double floor = std::floor(x);
  const double rest = x - floor;
  if (rest > 0.5 || (rest == 0.5 && std::fmod(floor, 2.0) != 0.0)) return floor + 1.0;
  return floor;
}

// Runs body(i) for i in [0, count) on `threads` threads; the assignment of items to threads does not
// affect the results (each item is computed by one thread, in a fixed order).
template <typename Body>
void parallel_for(int64_t count, int threads, Body body) {
  int64_t workers = threads > 0 ? threads : std::max(1u, std::thread::hardware_concurrency());
  workers = std::min(workers, count);
  if (workers <= 1) {
    for (int64_t i = 0; i < count; ++i) body(i);
    return;
  }
  std::atomic<int64_t> next{0};
  std::exception_ptr error;
  std::mutex error_mutex;
  auto worker = [&] {
    try {
      for (int64_t i = next++; i < count; i = next++) body(i);
    } catch (...) {
      std::lock_guard lock(error_mutex);
      if (!error) error = std::current_exception();
      next = count;
    }
  };
  std::vector<std::thread> pool;
  for (int64_t w = 0; w < workers; ++w) pool.emplace_back(worker);
  for (auto& t : pool) t.join();
  if (error) std::rethrow_exception(error);
}

// Tokens of request b the reference may read: never past the block-table row.
int64_t usable_seqlen(const HostProblem& hp, int32_t b) {
  const DecodeProblem& p = hp.problem;
  const int64_t capacity = static_cast<int64_t>(p.max_pages_per_seq) * p.page_size;
  return std::clamp<int64_t>(hp.seqlens[b], 0, capacity);
}

void check_problem(const HostProblem& hp) {
  const DecodeProblem& p = hp.problem;
  auto fail = [](const std::string& what) { throw std::invalid_argument("reference::decode: " + what); };
  if (p.batch < 0 || p.s_q < 1 || p.h_q < 1 || p.h_kv < 1)
    fail("need batch >= 0, s_q >= 1, h_q >= 1, h_kv >= 1");
  if (p.h_q % p.h_kv != 0) fail("h_q (" + std::to_string(p.h_q) + ") must be a multiple of h_kv");
  if (p.d_v < 1 || p.d_v > p.d_qk) fail("need 1 <= d_v <= d_qk");
  if (p.page_size < 1 || p.max_pages_per_seq < 0 || p.num_pages < 0)
    fail("need page_size >= 1, max_pages_per_seq >= 0, num_pages >= 0");
  const bool dense = p.kv_format == KvFormat::kDense;
  if (!is_half_dtype(p.q_dtype) || (dense && !is_half_dtype(p.kv_dtype)))
    fail(std::string("q and a dense kv must be bf16 or fp16; got ") + to_string(p.q_dtype) + "/" +
         to_string(p.kv_dtype));
  if (p.kv_format != KvFormat::kDense && p.kv_format != KvFormat::kFp8PerTensor &&
      p.kv_format != KvFormat::kFp8DeepSeekV32)
    fail("unknown kv_format " + std::to_string(static_cast<int32_t>(p.kv_format)));
  if (!dense && p.kv_dtype != DType::kFP8E4M3)
    fail(std::string("kv_format ") + to_string(p.kv_format) + " needs kv_dtype fp8_e4m3; got " +
         to_string(p.kv_dtype));
  if (p.kv_format == KvFormat::kFp8DeepSeekV32 && (p.d_qk != 576 || p.d_v != 512))
    fail("kv_format fp8_deepseek_v32 needs d_qk = 576 and d_v = 512");
  if (p.kv_format == KvFormat::kFp8PerTensor && !(std::isfinite(hp.descale_k) && hp.descale_k > 0.f))
    fail("descale_k must be finite and positive; got " + std::to_string(hp.descale_k));
  if (p.batch > 0 && (!hp.q || !hp.block_table || !hp.seqlens)) fail("null q, block_table or seqlens");
  if (p.varlen_q) {
    if (!hp.cu_seqlens_q) fail("varlen_q needs cu_seqlens_q");
    if (hp.total_q < 0) fail("total_q must not be negative");
    if (hp.cu_seqlens_q[0] != 0) fail("cu_seqlens_q[0] must be 0");
    for (int32_t b = 0; b < p.batch; ++b) {
      const int32_t len = hp.cu_seqlens_q[b + 1] - hp.cu_seqlens_q[b];
      if (len < 0 || len > p.s_q)
        fail("request " + std::to_string(b) + " has " + std::to_string(len) +
             " query tokens; need 0 <= q_len <= s_q (max_seqlen_q)");
    }
    if (hp.cu_seqlens_q[p.batch] > hp.total_q) fail("cu_seqlens_q[batch] exceeds total_q");
  }
  for (int32_t b = 0; b < p.batch; ++b) {
    const int64_t pages = (usable_seqlen(hp, b) + p.page_size - 1) / p.page_size;
    if (pages > 0 && dense && !hp.kv_cache) fail("null kv_cache");
    if (pages > 0 && !dense && !hp.kv_bytes) fail("null kv_bytes (the FP8 cache)");
    for (int64_t j = 0; j < pages; ++j) {
      const int32_t id = hp.block_table[b * static_cast<int64_t>(p.max_pages_per_seq) + j];
      if (id < 0 || id >= p.num_pages)
        throw std::out_of_range("reference::decode: request " + std::to_string(b) + " block-table entry " +
                                std::to_string(j) + " holds page id " + std::to_string(id) +
                                ", outside [0, " + std::to_string(p.num_pages) + ")");
    }
  }
}

// Four independent partial sums let the compiler vectorise the fp64 dot product (fixed order, so the
// result does not depend on the thread count).
double dot(const double* a, const double* b, int32_t n) {
  double part[4] = {0, 0, 0, 0};
  int32_t c = 0;
  for (; c + 4 <= n; c += 4)
    for (int j = 0; j < 4; ++j) part[j] += a[c + j] * b[c + j];
  for (; c < n; ++c) part[0] += a[c] * b[c];
  return (part[0] + part[1]) + (part[2] + part[3]);
}

struct Row {
  int32_t token, head;
  int64_t visible;  // keys [0, visible) are seen
};

// One work item: up to kRowsPerItem query rows of one request that share one kv head.
// weighted_abs: null, or [batch, s_q, h_q, d_v] for Σ w·|v| / Σ w.
void decode_rows(const HostProblem& hp, int32_t b, int32_t kv_head, int32_t row_begin, int32_t row_end,
                 LseBase base, double* out, double* lse, double* weighted_abs) {
  const DecodeProblem& p = hp.problem;
  const int32_t heads_per_kv = p.h_q / p.h_kv;
  const int64_t n = usable_seqlen(hp, b);
  // The request's query tokens: packed from cu_seqlens_q[b] (varlen), or s_q of its own batch slice.
  const int64_t first = p.varlen_q ? hp.cu_seqlens_q[b] : int64_t{b} * p.s_q;
  const int32_t q_len = p.varlen_q ? hp.cu_seqlens_q[b + 1] - hp.cu_seqlens_q[b] : p.s_q;
  const HalfTable& q_table = half_table(p.q_dtype);
  const HalfTable& kv_table = half_table(p.kv_format == KvFormat::kDense ? p.kv_dtype : DType::kBF16);
  const std::array<double, 256>& e4m3 = e4m3_table();
  const int32_t d_qk = p.d_qk, d_v = p.d_v;

  std::vector<Row> rows;
  int64_t max_visible = 0;
  for (int32_t r = row_begin; r < row_end; ++r) {
    const int32_t token = r / heads_per_kv;
    if (token >= q_len) break;  // varlen: rows past the request's query tokens do not exist
    const int32_t head = kv_head * heads_per_kv + r % heads_per_kv;
    // Causal MTP is aligned bottom-right: token i sees keys [0, n - q_len + i].
    const int64_t visible = hp.causal ? std::clamp<int64_t>(n - q_len + token + 1, 0, n) : n;
    rows.push_back({token, head, visible});
    max_visible = std::max(max_visible, visible);
  }
  const auto nr = static_cast<int64_t>(rows.size());

  auto row_offset = [&](const Row& row) { return ((first + row.token) * p.h_q + row.head) * d_v; };
  auto lse_at = [&](const Row& row) -> double& {
    if (p.varlen_q) return lse[row.head * int64_t{hp.total_q} + first + row.token];
    return lse[(b * int64_t{p.h_q} + row.head) * p.s_q + row.token];
  };

  // Index of token t's [token, head] row in the cache [num_pages, page_size, h_kv, row].
  auto cache_row = [&](int64_t t) {
    const int32_t page = hp.block_table[b * static_cast<int64_t>(p.max_pages_per_seq) + t / p.page_size];
    const int64_t slot = static_cast<int64_t>(page) * p.page_size + t % p.page_size;
    return slot * p.h_kv + kv_head;
  };
  // The first `cols` dequantised values of token t; every product e4m3 · fp32 scale is exact in fp64.
  auto load_row = [&](int64_t t, int32_t cols, double* dst) {
    using Token = Fp8DeepSeekV32Token;
    switch (p.kv_format) {
      case KvFormat::kDense: {
        const uint16_t* src = hp.kv_cache + cache_row(t) * d_qk;
        for (int32_t c = 0; c < cols; ++c) dst[c] = kv_table[src[c]];
        return;
      }
      case KvFormat::kFp8PerTensor: {
        const uint8_t* src = hp.kv_bytes + cache_row(t) * d_qk;
        const double scale = hp.descale_k;
        for (int32_t c = 0; c < cols; ++c) dst[c] = e4m3[src[c]] * scale;
        return;
      }
      case KvFormat::kFp8DeepSeekV32: {
        const uint8_t* src = hp.kv_bytes + cache_row(t) * Token::kBytes;
        float scales[Token::kScales];  // little-endian host, as the device
        std::memcpy(scales, src + Token::kScaleOffset, sizeof(scales));
        const int32_t latent = std::min(cols, Token::kLatent);
        for (int32_t c = 0; c < latent; ++c) dst[c] = e4m3[src[c]] * double{scales[c / Token::kScaleGroup]};
        for (int32_t c = latent; c < cols; ++c) {
          uint16_t bits;
          std::memcpy(&bits, src + Token::kRopeOffset + 2 * (c - Token::kLatent), sizeof(bits));
          dst[c] = kv_table[bits];
        }
        return;
      }
    }
  };
  std::vector<double> block(static_cast<std::size_t>(kKeyBlock) * d_qk);  // [kKeyBlock, d_qk]
  auto load_block = [&](int64_t t0, int64_t count, int32_t cols) {
    for (int64_t t = 0; t < count; ++t) load_row(t0 + t, cols, block.data() + t * d_qk);
  };

  std::vector<double> q(nr * d_qk);              // [nr, d_qk]
  std::vector<double> logits(nr * max_visible);  // [nr, max_visible]
  for (int64_t r = 0; r < nr; ++r) {
    const uint16_t* src = hp.q + ((first + rows[r].token) * p.h_q + rows[r].head) * d_qk;
    for (int32_t c = 0; c < d_qk; ++c) q[r * d_qk + c] = q_table[src[c]];
  }

  // Pass 1: logits S = scale · q · k over the whole 576-column row.
  for (int64_t t0 = 0; t0 < max_visible; t0 += kKeyBlock) {
    const int64_t count = std::min<int64_t>(kKeyBlock, max_visible - t0);
    load_block(t0, count, d_qk);
    for (int64_t r = 0; r < nr; ++r) {
      const double* qr = q.data() + r * d_qk;
      for (int64_t t = t0; t < std::min(t0 + count, rows[r].visible); ++t) {
        const double* k = block.data() + (t - t0) * d_qk;
        logits[r * max_visible + t] = hp.softmax_scale * dot(qr, k, d_qk);
      }
    }
  }

  // Exact softmax with max subtraction; logits become unnormalised weights.
  std::vector<double> row_max(nr, -kInf), row_sum(nr, 0.0);
  for (int64_t r = 0; r < nr; ++r) {
    double* l = logits.data() + r * max_visible;
    for (int64_t t = 0; t < rows[r].visible; ++t) row_max[r] = std::max(row_max[r], l[t]);
    for (int64_t t = 0; t < rows[r].visible; ++t) {
      l[t] = std::exp(l[t] - row_max[r]);
      row_sum[r] += l[t];
    }
  }

  // Pass 2: O = Σ w · v, v = the first d_v columns of the same cache row (and Σ w · |v| when asked).
  std::vector<double> acc(nr * d_v, 0.0);                         // [nr, d_v]
  std::vector<double> acc_abs(weighted_abs ? nr * d_v : 0, 0.0);  // [nr, d_v]
  for (int64_t t0 = 0; t0 < max_visible; t0 += kKeyBlock) {
    const int64_t count = std::min<int64_t>(kKeyBlock, max_visible - t0);
    load_block(t0, count, d_v);
    for (int64_t r = 0; r < nr; ++r) {
      double* a = acc.data() + r * d_v;
      for (int64_t t = t0; t < std::min(t0 + count, rows[r].visible); ++t) {
        const double w = logits[r * max_visible + t];
        const double* v = block.data() + (t - t0) * d_qk;
        for (int32_t c = 0; c < d_v; ++c) a[c] += w * v[c];
        if (weighted_abs) {
          double* a_abs = acc_abs.data() + r * d_v;
          for (int32_t c = 0; c < d_v; ++c) a_abs[c] += w * std::abs(v[c]);
        }
      }
    }
  }

  for (int64_t r = 0; r < nr; ++r) {
    double* o = out + row_offset(rows[r]);
    double* o_abs = weighted_abs ? weighted_abs + row_offset(rows[r]) : nullptr;
    if (rows[r].visible == 0) {
      std::fill(o, o + d_v, 0.0);
      if (o_abs) std::fill(o_abs, o_abs + d_v, 0.0);
      lse_at(rows[r]) = kInf;
      continue;
    }
    for (int32_t c = 0; c < d_v; ++c) o[c] = acc[r * d_v + c] / row_sum[r];
    if (o_abs)
      for (int32_t c = 0; c < d_v; ++c) o_abs[c] = acc_abs[r * d_v + c] / row_sum[r];
    const double lse_natural = row_max[r] + std::log(row_sum[r]);
    lse_at(rows[r]) = base == LseBase::kNatural ? lse_natural : lse_natural * std::numbers::log2e;
  }
}

}  // namespace

float bf16_to_float(uint16_t bits) {
  return std::bit_cast<float>(static_cast<uint32_t>(bits) << 16);
}

uint16_t float_to_bf16(float value) {
  const uint32_t x = std::bit_cast<uint32_t>(value);
  if ((x & kFloatAbsMask) > kFloatInfBits) return static_cast<uint16_t>((x >> 16) | 0x0040);  // quiet NaN
  // Round to nearest even; Inf stays Inf and overflow rounds to Inf.
  return static_cast<uint16_t>((x + 0x7FFF + ((x >> 16) & 1)) >> 16);
}

float fp16_to_float(uint16_t bits) {
  const uint32_t sign = static_cast<uint32_t>(bits & 0x8000) << 16;
  const uint32_t exponent = (bits >> 10) & 0x1F;
  const uint32_t mantissa = bits & 0x3FF;
  if (exponent == 0) {  // zero or subnormal: mantissa · 2^-24
    const float magnitude = std::ldexp(static_cast<float>(mantissa), -24);
    return sign ? -magnitude : magnitude;
  }
  if (exponent == 0x1F) return std::bit_cast<float>(sign | kFloatInfBits | (mantissa << 13));
  // Rebias the exponent from 15 to 127.
  return std::bit_cast<float>(sign | ((exponent + 112) << 23) | (mantissa << 13));
}

uint16_t float_to_fp16(float value) {
  const uint32_t x = std::bit_cast<uint32_t>(value);
  const auto sign = static_cast<uint16_t>((x >> 16) & 0x8000);
  const uint32_t abs = x & kFloatAbsMask;
  constexpr uint32_t kHalfOverflow = 0x47800000;   // 2^16: Inf after rounding at any rate
  constexpr uint32_t kHalfMinNormal = 0x38800000;  // 2^-14
  constexpr uint32_t kRebias = 112u << 23;         // exponent bias 127 -> 15
  if (abs > kFloatInfBits) return sign | 0x7E00 | static_cast<uint16_t>((abs >> 13) & 0x3FF);  // quiet NaN
  if (abs >= kHalfOverflow) return sign | 0x7C00;
  if (abs >= kHalfMinNormal) {
    // Round to nearest even on the 13 dropped bits; a carry into the exponent is the right encoding,
    // up to Inf for values >= 65520.
    const uint32_t r = abs - kRebias;
    return sign | static_cast<uint16_t>((r + 0xFFF + ((r >> 13) & 1)) >> 13);
  }
  // Subnormal half: value / 2^-24 = (1.mantissa · 2^23) · 2^(exponent - 126), rounded to nearest even.
  const uint32_t exponent = abs >> 23;
  const int shift = 126 - static_cast<int>(exponent);
  if (shift > 24) return sign;
  const uint32_t m = (abs & 0x7FFFFF) | 0x800000;
  uint32_t result = m >> shift;
  const uint32_t rest = m & ((1u << shift) - 1);
  const uint32_t half = 1u << (shift - 1);
  if (rest > half || (rest == half && (result & 1))) ++result;
  return sign | static_cast<uint16_t>(result);
}

float fp8_e4m3_to_float(uint8_t bits) {
  const bool negative = (bits & 0x80) != 0;
  const uint32_t exponent = (bits >> 3) & 0xF;
  const uint32_t mantissa = bits & 0x7;
  if (exponent == 0xF && mantissa == 0x7)
    return std::bit_cast<float>((negative ? 0x80000000u : 0u) | 0x7FC00000u);  // e4m3fn's only NaN
  if (exponent == 0) {  // zero or subnormal: mantissa · 2^-9
    const float magnitude = std::ldexp(static_cast<float>(mantissa), -9);
    return negative ? -magnitude : magnitude;
  }
  // Rebias the exponent from 7 to 127.
  return std::bit_cast<float>((negative ? 0x80000000u : 0u) | ((exponent + 120) << 23) | (mantissa << 20));
}

uint8_t float_to_fp8_e4m3(float value) {
  constexpr uint8_t kNaN = 0x7F, kMaxFinite = 0x7E;  // 448 = 1.75 · 2^8
  constexpr int kMinNormalExponent = -6, kMantissaBits = 3, kBias = 7;
  const uint8_t sign = std::signbit(value) ? 0x80 : 0x00;
  if (std::isnan(value)) return sign | kNaN;
  const double magnitude = std::abs(static_cast<double>(value));
  if (magnitude >= 448.0) return sign | kMaxFinite;  // satfinite; ±inf included
  int exponent = 0;
  std::frexp(magnitude, &exponent);  // magnitude = f · 2^exponent, f in [0.5, 1)
  const int e = std::max(exponent - 1, kMinNormalExponent);
  // Units of the last place at e: 2^(e-3); the subnormal range shares the quantum of the smallest normal.
  const double units = round_half_even(std::ldexp(magnitude, kMantissaBits - e));  // in [0, 16]
  // A subnormal rounds into the normal range, and a mantissa overflow into the next exponent, by the
  // same carry: the encoding is (e - emin) · 8 + units when units counts from 0 in the subnormal range.
  const int code = magnitude < std::ldexp(1.0, kMinNormalExponent)
                       ? static_cast<int>(units)
                       : ((e + kBias) << kMantissaBits) + static_cast<int>(units) - (1 << kMantissaBits);
  return sign | static_cast<uint8_t>(std::min<int>(code, kMaxFinite));
}

float half_bits_to_float(uint16_t bits, DType dtype) {
  if (dtype == DType::kBF16) return bf16_to_float(bits);
  if (dtype == DType::kFP16) return fp16_to_float(bits);
  throw std::invalid_argument(std::string("half_bits_to_float: dtype must be bf16 or fp16; got ") +
                              to_string(dtype));
}

uint16_t float_to_half_bits(float value, DType dtype) {
  if (dtype == DType::kBF16) return float_to_bf16(value);
  if (dtype == DType::kFP16) return float_to_fp16(value);
  throw std::invalid_argument(std::string("float_to_half_bits: dtype must be bf16 or fp16; got ") +
                              to_string(dtype));
}

void decode(const HostProblem& problem, std::vector<double>& out, std::vector<double>& lse, LseBase base,
            int threads, std::vector<double>* weighted_abs) {
  check_problem(problem);
  const DecodeProblem& p = problem.problem;
  const int64_t tokens = p.varlen_q ? int64_t{problem.total_q} : int64_t{p.batch} * p.s_q;
  out.assign(static_cast<std::size_t>(tokens) * p.h_q * p.d_v, 0.0);
  if (weighted_abs) weighted_abs->assign(out.size(), 0.0);
  lse.assign(static_cast<std::size_t>(tokens) * p.h_q, kInf);

  const int32_t rows = p.s_q * (p.h_q / p.h_kv);
  const int32_t chunks = (rows + kRowsPerItem - 1) / kRowsPerItem;
  const int64_t items = static_cast<int64_t>(p.batch) * p.h_kv * chunks;
  parallel_for(items, threads, [&](int64_t item) {
    const auto chunk = static_cast<int32_t>(item % chunks);
    const auto kv_head = static_cast<int32_t>(item / chunks % p.h_kv);
    const auto b = static_cast<int32_t>(item / chunks / p.h_kv);
    const int32_t row_begin = chunk * kRowsPerItem;
    decode_rows(problem, b, kv_head, row_begin, std::min(rows, row_begin + kRowsPerItem), base, out.data(),
                lse.data(), weighted_abs ? weighted_abs->data() : nullptr);
  });
}

void merge_states(int num_states, int rows, int dim, const double* o_states, const double* lse_states,
                  LseBase base, double* out, double* lse_out) {
  // Work in natural log; base-2 values convert exactly enough in fp64.
  const double to_natural = base == LseBase::kNatural ? 1.0 : std::numbers::ln2;
  for (int64_t r = 0; r < rows; ++r) {
    double m = -kInf;
    for (int64_t s = 0; s < num_states; ++s) {
      const double l = lse_states[s * rows + r];
      if (!std::isinf(l)) m = std::max(m, l * to_natural);
    }
    double* o = out + r * dim;
    std::fill(o, o + dim, 0.0);
    if (m == -kInf) {  // every state empty (NaN lse falls through and propagates)
      bool any_nan = false;
      for (int64_t s = 0; s < num_states; ++s) any_nan |= std::isnan(lse_states[s * rows + r]);
      if (any_nan) std::fill(o, o + dim, std::numeric_limits<double>::quiet_NaN());
      if (lse_out) lse_out[r] = any_nan ? std::numeric_limits<double>::quiet_NaN() : kInf;
      continue;
    }
    double sum = 0;
    for (int64_t s = 0; s < num_states; ++s) {
      const double l = lse_states[s * rows + r];
      if (std::isinf(l)) continue;
      const double w = std::exp(l * to_natural - m);
      sum += w;
      const double* os = o_states + (s * rows + r) * dim;
      for (int64_t c = 0; c < dim; ++c) o[c] += w * os[c];
    }
    for (int64_t c = 0; c < dim; ++c) o[c] /= sum;
    if (lse_out) lse_out[r] = (m + std::log(sum)) / to_natural;
  }
}

}  // namespace etap::reference
