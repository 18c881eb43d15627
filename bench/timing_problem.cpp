#include "timing_problem.hpp"

#include <algorithm>
#include <numeric>
#include <random>
#include <stdexcept>

#include "fill.hpp"
#include "testing/problem.hpp"

namespace etap::bench {
namespace {

constexpr float kInputAmplitude = 0.5f;  // uniform in [-0.5, 0.5]: std ≈ 0.29, like testing's N(0, 0.25)
constexpr int32_t kSparePages = 1;

}  // namespace

std::vector<int32_t> config_seqlens(const BenchConfig& config) {
  if (config.varlen) return testing::varlen_seqlens(config.batch, config.seqlen, config.varlen_seed);
  return std::vector<int32_t>(config.batch, config.seqlen);
}

std::vector<int32_t> config_q_lens(const BenchConfig& config) {
  if (config.varlen_q) return testing::random_q_lens(config.batch, config.s_q, config.varlen_seed);
  return std::vector<int32_t>(config.batch, config.s_q);
}

DType config_dtype(const BenchConfig& config) {
  if (config.dtype == "bf16") return DType::kBF16;
  if (config.dtype == "fp16") return DType::kFP16;
  throw std::invalid_argument("unknown dtype '" + config.dtype + "' (bf16 or fp16)");
}

KvFormat config_kv_format(const BenchConfig& config) {
  if (config.kv_format == "dense") return KvFormat::kDense;
  if (config.kv_format == "fp8") return KvFormat::kFp8PerTensor;
  if (config.kv_format == "fp8-v32") return KvFormat::kFp8DeepSeekV32;
  throw std::invalid_argument("unknown kv_format '" + config.kv_format + "' (dense, fp8 or fp8-v32)");
}

TimingProblem::TimingProblem(const BenchConfig& config, int64_t rotate_bytes, int max_sets, uint64_t seed,
                             cudaStream_t stream)
    : seqlens_(config_seqlens(config)), q_lens_(config_q_lens(config)), causal_(config.causal) {
  const DType dtype = config_dtype(config);
  const int32_t page_size = config.page_size;
  if (page_size < 1) throw std::invalid_argument("page_size must be at least 1");
  std::vector<int32_t> pages(seqlens_.size());
  for (size_t i = 0; i < seqlens_.size(); ++i)
    pages[i] = static_cast<int32_t>((int64_t{std::max(seqlens_[i], 0)} + page_size - 1) / page_size);
  const int64_t used_pages = std::accumulate(pages.begin(), pages.end(), int64_t{0});
  const int32_t max_pages = std::max(1, *std::max_element(pages.begin(), pages.end()));

  problem_.batch = config.batch;
  problem_.s_q = config.s_q;
  problem_.h_q = config.h_q;
  problem_.h_kv = config.h_kv;
  problem_.d_qk = config.d_qk;
  problem_.d_v = config.d_v;
  problem_.page_size = page_size;
  problem_.num_pages = static_cast<int32_t>(used_pages + kSparePages);
  problem_.max_pages_per_seq = max_pages;
  problem_.q_dtype = problem_.kv_dtype = problem_.out_dtype = dtype;
  problem_.kv_format = config_kv_format(config);
  const bool fp8 = problem_.kv_format != KvFormat::kDense;
  if (fp8) problem_.kv_dtype = DType::kFP8E4M3;
  problem_.varlen_q = config.varlen_q;
  std::vector<int32_t> cu(1, 0);
  for (int32_t len : q_lens_) cu.push_back(cu.back() + len);
  total_q_ = std::max(cu.back(), 1);  // the packed q holds at least one token
  const int64_t tokens = config.varlen_q ? int64_t{total_q_} : int64_t{problem_.batch} * problem_.s_q;

  std::vector<int32_t> order(problem_.num_pages);
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), std::mt19937_64(seed));
  std::vector<int32_t> table(static_cast<size_t>(problem_.batch) * max_pages, kPaddingPageId);
  size_t next = 0;
  for (int32_t b = 0; b < problem_.batch; ++b)
    for (int32_t i = 0; i < pages[b]; ++i) table[static_cast<size_t>(b) * max_pages + i] = order[next++];

  const int64_t elem = static_cast<int64_t>(dtype_bytes(dtype));
  const int64_t kv_elems =
      static_cast<int64_t>(problem_.num_pages) * page_size * problem_.h_kv * problem_.d_qk;
  const int64_t q_elems = tokens * problem_.h_q * problem_.d_qk;
  const int64_t out_elems = tokens * problem_.h_q * problem_.d_v;
  // FP8: rows of 576 e4m3 bytes or 656-byte V3.2 tokens.
  const int64_t kv_rows = static_cast<int64_t>(problem_.num_pages) * page_size * problem_.h_kv;
  const int row_bytes =
      problem_.kv_format == KvFormat::kFp8DeepSeekV32 ? Fp8DeepSeekV32Token::kBytes : problem_.d_qk;
  kv_set_bytes_ = fp8 ? kv_rows * row_bytes : kv_elems * elem;
  if (rotate_bytes > 0)
    kv_sets_ = static_cast<int>(
        std::clamp<int64_t>((rotate_bytes + kv_set_bytes_ - 1) / kv_set_bytes_, 1, std::max(max_sets, 1)));
  kv_ = DeviceBuffer(kv_set_bytes_ * kv_sets_);
  q_ = DeviceBuffer(q_elems * elem);
  out_ = DeviceBuffer(out_elems * elem);
  lse_ = DeviceBuffer(static_cast<size_t>(tokens) * problem_.h_q * sizeof(float));
  if (config.varlen_q) cu_seqlens_q_ = DeviceBuffer(cu.size() * sizeof(int32_t));
  block_table_ = DeviceBuffer(table.size() * sizeof(int32_t));
  seqlens_d_ = DeviceBuffer(seqlens_.size() * sizeof(int32_t));

  const HalfType half = dtype == DType::kBF16 ? HalfType::kBF16 : HalfType::kFP16;
  if (fp8) {
    fill_fp8_cache(kv_.get(), kv_rows * kv_sets_, row_bytes, problem_.kv_format == KvFormat::kFp8DeepSeekV32,
                   seed * 3 + 1, stream);
    const float descale = 0.25f;  // e4m3 values up to 1.875: |k| < 0.47, like the dense fill's 0.5
    descale_k_ = DeviceBuffer(sizeof(float));
    ETAP_BENCH_CUDA(
        cudaMemcpyAsync(descale_k_.get(), &descale, sizeof(float), cudaMemcpyHostToDevice, stream));
  } else {
    fill_random_half(kv_.get(), kv_elems * kv_sets_, half, kInputAmplitude, seed * 3 + 1, stream);
  }
  fill_random_half(q_.get(), q_elems, half, kInputAmplitude, seed * 3 + 2, stream);
  ETAP_BENCH_CUDA(cudaMemcpyAsync(block_table_.get(), table.data(), block_table_.bytes(),
                                  cudaMemcpyHostToDevice, stream));
  ETAP_BENCH_CUDA(
      cudaMemcpyAsync(seqlens_d_.get(), seqlens_.data(), seqlens_d_.bytes(), cudaMemcpyHostToDevice, stream));
  if (config.varlen_q)
    ETAP_BENCH_CUDA(cudaMemcpyAsync(cu_seqlens_q_.get(), cu.data(), cu_seqlens_q_.bytes(),
                                    cudaMemcpyHostToDevice, stream));
  ETAP_BENCH_CUDA(cudaMemsetAsync(out_.get(), 0, out_.bytes(), stream));
  ETAP_BENCH_CUDA(cudaStreamSynchronize(stream));  // the host vectors above go out of scope
}

DecodeArgs TimingProblem::args(int set) const {
  const char* kv = kv_.get<const char>() + static_cast<int64_t>(set % kv_sets_) * kv_set_bytes_;
  DecodeArgs a =
      problem_.varlen_q
          ? make_varlen_args(problem_, total_q_, cu_seqlens_q_.get<const int32_t>(), q_.get(), kv,
                             block_table_.get<const int32_t>(), seqlens_d_.get<const int32_t>(), out_.get(),
                             lse_.get<float>(), static_cast<float>(kSoftmaxScale), causal_, LseBase::kNatural)
          : make_dense_args(problem_, q_.get(), kv, block_table_.get<const int32_t>(),
                            seqlens_d_.get<const int32_t>(), out_.get(), lse_.get<float>(),
                            static_cast<float>(kSoftmaxScale), causal_, LseBase::kNatural);
  if (problem_.kv_format == KvFormat::kFp8PerTensor) a.descale_k = descale_k_.get<const float>();
  return a;
}

}  // namespace etap::bench
