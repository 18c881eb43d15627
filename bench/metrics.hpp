// The benchmark's arithmetic (docs/PERF.md, "Performance method"): bytes, FLOPs, rates and ceilings. Pure
// host code, unit-tested on the CPU; the GPU harness only measures times and feeds them here.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <span>
#include <vector>

#include "testing/stats.hpp"

namespace etap::bench {

inline constexpr int64_t kDimQK = 576;  // MLA: 512 latent ‖ 64 RoPE; K is the whole cache row
inline constexpr int64_t kDimV = 512;   // MLA: V = first 512 columns of the same row
inline constexpr double kMicro = 1e-6;
inline constexpr double kGiga = 1e9;
inline constexpr double kTera = 1e12;
inline constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// What one decode call must move and compute, independent of the implementation.
struct Workload {
  int64_t batch = 0, s_q = 1, h_q = 0;
  int64_t total_seqlen = 0;  // Σ s_k over the requests
  int64_t elem_bytes = 2;    // bf16/fp16
  int64_t h_kv = 1, d_qk = kDimQK, d_v = kDimV;
  int64_t kv_row_bytes = 0;  // bytes of one KV row when not d_qk · elem_bytes (FP8: 576 or 656)

  double mean_seqlen() const { return batch > 0 ? static_cast<double>(total_seqlen) / batch : 0.0; }
  // Every KV row is read once for all query rows of its head: b·s̄_k·h_kv·d_qk·2 (MLA: b·s̄_k·576·2).
  double kv_bytes() const {
    return static_cast<double>(total_seqlen) * h_kv * (kv_row_bytes > 0 ? kv_row_bytes : d_qk * elem_bytes);
  }
  double q_bytes() const { return static_cast<double>(batch * s_q * h_q * d_qk * elem_bytes); }
  double out_bytes() const { return static_cast<double>(batch * s_q * h_q * d_v * elem_bytes); }
  double bytes() const { return kv_bytes() + q_bytes() + out_bytes(); }
  // 2·b·s_q·h_q·s̄_k·(d_qk + d_v): Sᵀ = K·Qᵀ and Oᵀ = Vᵀ·Pᵀ, causal masking not subtracted.
  double flops() const { return 2.0 * static_cast<double>(s_q * h_q) * total_seqlen * (d_qk + d_v); }
  double intensity() const { return bytes() > 0 ? flops() / bytes() : 0.0; }  // FLOP/byte
};

inline int64_t sum_seqlens(std::span<const int32_t> seqlens) {
  return std::accumulate(seqlens.begin(), seqlens.end(), int64_t{0});
}

inline double mean_seqlen(std::span<const int32_t> seqlens) {
  return seqlens.empty() ? 0.0 : static_cast<double>(sum_seqlens(seqlens)) / seqlens.size();
}

inline Workload make_workload(int64_t s_q, int64_t h_q, std::span<const int32_t> seqlens,
                              int64_t elem_bytes = 2, int64_t h_kv = 1, int64_t d_qk = kDimQK,
                              int64_t d_v = kDimV) {
  return {static_cast<int64_t>(seqlens.size()), s_q, h_q, sum_seqlens(seqlens), elem_bytes, h_kv, d_qk, d_v};
}

inline double gb_per_s(double bytes, double us) {
  return us > 0 ? bytes / (us * kMicro) / kGiga : kNaN;
}
inline double tflop_per_s(double flops, double us) {
  return us > 0 ? flops / (us * kMicro) / kTera : kNaN;
}
inline double percent_of(double value, double ceiling) {
  return ceiling > 0 ? 100.0 * value / ceiling : kNaN;
}
// Time the KV bytes alone would take at `gbps`: no implementation can beat it.
inline double floor_us(double kv_bytes, double gbps) {
  return gbps > 0 ? kv_bytes / (gbps * kGiga) / kMicro : kNaN;
}

// Ceilings from their raw measurements.
inline double copy_gbps(double bytes_copied, double us) {
  return gb_per_s(2.0 * bytes_copied, us);
}  // read + write
inline double gemm_flops(int64_t m, int64_t n, int64_t k) {
  return 2.0 * m * n * k;
}
// Roofline: attainable TFLOP/s at `intensity` FLOP/byte under a bandwidth and a compute ceiling.
inline double roofline_tflops(double intensity, double gbps, double peak_tflops) {
  return std::min(peak_tflops, intensity * gbps * kGiga / kTera);
}
// Theoretical DRAM bandwidth from the attributes CUDA reports (double data rate).
inline double dram_peak_gbps(int64_t memory_clock_khz, int64_t bus_width_bits) {
  return 2.0 * memory_clock_khz * 1e3 * (bus_width_bits / 8.0) / kGiga;
}

struct Summary {
  double median = kNaN, min = kNaN, max = kNaN, mean = kNaN;
  int64_t count = 0;
};

using testing::median;

inline Summary summarize(const std::vector<double>& samples) {
  Summary s;
  s.count = static_cast<int64_t>(samples.size());
  if (samples.empty()) return s;
  s.median = median(samples);
  const auto [lo, hi] = std::minmax_element(samples.begin(), samples.end());
  s.min = *lo;
  s.max = *hi;
  s.mean = std::accumulate(samples.begin(), samples.end(), 0.0) / samples.size();
  return s;
}

}  // namespace etap::bench
