// The benchmark's arithmetic (bench/metrics.hpp) against hand-computed values and the figures of
// docs/PERF.md's "Performance method".
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "bench/metrics.hpp"

namespace etap::bench {
namespace {

TEST(BenchMetrics, BytesOfThePaperConfiguration) {
  const std::vector<int32_t> seqlens(16, 4096);
  const Workload w = make_workload(1, 16, seqlens);
  EXPECT_EQ(w.kv_bytes(), 16.0 * 4096 * 576 * 2);
  EXPECT_EQ(w.q_bytes(), 16.0 * 16 * 576 * 2);
  EXPECT_EQ(w.out_bytes(), 16.0 * 16 * 512 * 2);
  EXPECT_EQ(w.bytes(), 76054528.0);
}

TEST(BenchMetrics, FlopsCountBothGemms) {
  const std::vector<int32_t> seqlens(16, 4096);
  EXPECT_EQ(make_workload(1, 16, seqlens).flops(), 2.0 * 16 * 1 * 16 * 4096 * (576 + 512));
  // s_q and h_q enter only as the number of rows R = s_q · h_q.
  EXPECT_EQ(make_workload(2, 16, seqlens).flops(), make_workload(1, 32, seqlens).flops());
}

TEST(BenchMetrics, OtherHeadDimsAndKvHeads) {
  const std::vector<int32_t> seqlens(16, 8192);
  // d 320/256: K is the whole 320-column row, V its first 256 columns.
  const Workload small = make_workload(1, 16, seqlens, 2, 1, 320, 256);
  EXPECT_EQ(small.kv_bytes(), 16.0 * 8192 * 320 * 2);
  EXPECT_EQ(small.q_bytes(), 16.0 * 16 * 320 * 2);
  EXPECT_EQ(small.out_bytes(), 16.0 * 16 * 256 * 2);
  EXPECT_EQ(small.flops(), 2.0 * 16 * 16 * 8192 * (320 + 256));
  // h_kv = 2: each KV head's rows are read once for its h_q / h_kv query heads; the FLOPs do not change.
  const Workload two_heads = make_workload(1, 32, seqlens, 2, 2);
  EXPECT_EQ(two_heads.kv_bytes(), 2 * make_workload(1, 32, seqlens).kv_bytes());
  EXPECT_EQ(two_heads.flops(), make_workload(1, 32, seqlens).flops());
}

TEST(BenchMetrics, IntensityIsAbout1Point89PerRow) {
  // docs/PERF.md, "Performance method": 2176 FLOPs per KV row and query row over 1152 bytes.
  const std::vector<int32_t> seqlens(1, 1 << 20);  // long enough that q and out bytes vanish
  for (int rows : {16, 32, 64}) {
    const Workload w = make_workload(1, rows, seqlens);
    EXPECT_NEAR(w.intensity(), 2176.0 / 1152.0 * rows, 1e-3 * rows) << rows;
  }
}

TEST(BenchMetrics, VariableLengthsUseTheirSum) {
  const std::vector<int32_t> seqlens = {1, 100, 4000, 0};
  EXPECT_EQ(sum_seqlens(seqlens), 4101);
  EXPECT_DOUBLE_EQ(mean_seqlen(seqlens), 4101.0 / 4);
  const Workload w = make_workload(1, 16, seqlens);
  EXPECT_DOUBLE_EQ(w.mean_seqlen(), 4101.0 / 4);
  EXPECT_EQ(w.kv_bytes(), 4101.0 * 1152);
  EXPECT_EQ(mean_seqlen(std::vector<int32_t>{}), 0.0);
}

TEST(BenchMetrics, RatesFromBytesAndMicroseconds) {
  EXPECT_DOUBLE_EQ(gb_per_s(3.0e9, 1000.0), 3000.0);  // 3 GB in 1 ms
  EXPECT_DOUBLE_EQ(tflop_per_s(2.0e12, 1.0e6), 2.0);  // 2 TFLOP in 1 s
  EXPECT_TRUE(std::isnan(gb_per_s(1.0, 0.0)));
  EXPECT_TRUE(std::isnan(tflop_per_s(1.0, -1.0)));
}

TEST(BenchMetrics, CopyBandwidthCountsReadAndWrite) {
  const double gib = 1024.0 * 1024 * 1024;
  EXPECT_NEAR(copy_gbps(gib, 714.0), 2 * gib / 714e-6 / 1e9, 1e-9);
  EXPECT_NEAR(copy_gbps(gib, 714.0), 3007.6, 0.1);
}

TEST(BenchMetrics, FloorMatchesDesignNotes) {
  // docs/PERF.md, "Performance method": b=16, s_k=8K is 151 MB → 50 µs at a copy bandwidth of 3005 GB/s,
  // 36 µs at 4249 GB/s;
  // b=1, s_k=8K is 9.4 MB → 3 µs.
  const Workload big = make_workload(1, 16, std::vector<int32_t>(16, 8192));
  EXPECT_NEAR(big.kv_bytes() / 1e6, 151.0, 0.1);
  EXPECT_NEAR(floor_us(big.kv_bytes(), 3005.0), 50.2, 0.1);
  EXPECT_NEAR(floor_us(big.kv_bytes(), 4249.0), 35.5, 0.1);
  const Workload one = make_workload(1, 16, std::vector<int32_t>(1, 8192));
  EXPECT_NEAR(floor_us(one.kv_bytes(), 3005.0), 3.1, 0.05);
  EXPECT_TRUE(std::isnan(floor_us(1.0, 0.0)));
}

TEST(BenchMetrics, PercentOfCeiling) {
  EXPECT_DOUBLE_EQ(percent_of(2850.0, 3000.0), 95.0);
  EXPECT_TRUE(std::isnan(percent_of(1.0, 0.0)));
}

TEST(BenchMetrics, GemmAndRoofline) {
  EXPECT_EQ(gemm_flops(8192, 8192, 8192), 2.0 * 8192.0 * 8192.0 * 8192.0);
  // Memory-bound below the ridge, compute-bound above it.
  EXPECT_DOUBLE_EQ(roofline_tflops(30.0, 3000.0, 766.0), 90.0);
  EXPECT_DOUBLE_EQ(roofline_tflops(1000.0, 3000.0, 766.0), 766.0);
}

TEST(BenchMetrics, DramPeakFromClockAndBus) {
  // H100 SXM reports a 2619 MHz memory clock on a 5120-bit bus: 3.35 TB/s.
  EXPECT_NEAR(dram_peak_gbps(2619000, 5120), 3352.3, 0.1);
}

TEST(BenchMetrics, MedianOddEvenEmpty) {
  EXPECT_DOUBLE_EQ(median({5.0, 1.0, 3.0}), 3.0);
  EXPECT_DOUBLE_EQ(median({4.0, 1.0, 3.0, 2.0}), 2.5);
  EXPECT_DOUBLE_EQ(median({7.0}), 7.0);
  EXPECT_TRUE(std::isnan(median({})));
}

TEST(BenchMetrics, SummaryIgnoresOrder) {
  const Summary s = summarize({30.0, 10.0, 20.0, 100.0, 25.0});
  EXPECT_EQ(s.count, 5);
  EXPECT_DOUBLE_EQ(s.median, 25.0);
  EXPECT_DOUBLE_EQ(s.min, 10.0);
  EXPECT_DOUBLE_EQ(s.max, 100.0);
  EXPECT_DOUBLE_EQ(s.mean, 37.0);
  EXPECT_EQ(summarize({}).count, 0);
}

}  // namespace
}  // namespace etap::bench
