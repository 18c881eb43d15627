// The benchmark's JSON/CSV schema (bench/record.hpp) and terminal table (bench/table.hpp).
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <sstream>
#include <string>

#include "bench/record.hpp"
#include "bench/table.hpp"

namespace etap::bench {
namespace {

bool same(double a, double b) {
  return (std::isnan(a) && std::isnan(b)) || a == b;
}

Record timed_record() {
  Record r;
  r.impl = "etap";
  r.config = {.sweep = "paper", .batch = 16, .seqlen = 8192, .h_q = 16, .s_q = 1};
  r.outcome = Outcome::kOk;
  r.message = "PASS max_abs=1e-4, \"quoted\"";
  r.mean_seqlen = 8192;
  r.max_seqlen = 8192;
  const Workload w = make_workload(1, 16, std::vector<int32_t>(16, 8192));
  r.bytes = w.bytes();
  r.kv_bytes = w.kv_bytes();
  r.flops = w.flops();
  r.samples = 30;
  r.us = 60.0;
  r.us_min = 59.0;
  r.us_max = 64.5;
  r.plan_us = 2.5;
  return r;
}

Report sample_report() {
  Report rep;
  rep.machine.gpu = "NVIDIA H100 80GB HBM3";
  rep.machine.sms = 132;
  rep.machine.cc_major = 9;
  rep.machine.l2_bytes = 50 << 20;
  rep.machine.memory_clock_khz = 2619000;
  rep.machine.bus_width_bits = 5120;
  rep.machine.dram_peak_gbps = dram_peak_gbps(2619000, 5120);
  rep.machine.driver_version = 12080;
  rep.machine.runtime_version = 13000;
  rep.machine.date = "2026-01-01T00:00:00Z";
  rep.method.iters = 30;
  rep.method.warmup = 5;
  rep.method.l2_flush_bytes = 100 << 20;
  rep.ceilings = {.copy_gbps = 3005,
                  .read_gbps = 3040,
                  .gemm_tflops = 766,
                  .copy_bytes = 1 << 30,
                  .read_bytes = 1 << 30,
                  .gemm_n = 8192};
  Record etap = timed_record();
  derive(etap, rep.ceilings);
  Record padded = etap;
  padded.impl = "padded";
  padded.outcome = Outcome::kNotAvailable;
  padded.message = "launch_decode_padded is not built";
  padded.us = padded.us_min = padded.us_max = padded.plan_us = kNaN;
  derive(padded, rep.ceilings);
  Record cublas = etap;
  cublas.impl = "cublas";
  cublas.us = 120.0;
  cublas.plan_us = kNaN;
  derive(cublas, rep.ceilings);
  rep.records = {etap, padded, cublas};
  return rep;
}

void expect_same(const Record& a, const Record& b) {
  EXPECT_EQ(a.impl, b.impl);
  EXPECT_EQ(a.config, b.config);
  EXPECT_EQ(a.outcome, b.outcome);
  EXPECT_EQ(a.message, b.message);
  EXPECT_EQ(a.max_seqlen, b.max_seqlen);
  EXPECT_EQ(a.samples, b.samples);
  for (auto [x, y] : {std::pair{a.mean_seqlen, b.mean_seqlen},
                      {a.bytes, b.bytes},
                      {a.kv_bytes, b.kv_bytes},
                      {a.flops, b.flops},
                      {a.us, b.us},
                      {a.us_min, b.us_min},
                      {a.us_max, b.us_max},
                      {a.plan_us, b.plan_us},
                      {a.gbps, b.gbps},
                      {a.tflops, b.tflops},
                      {a.pct_copy, b.pct_copy},
                      {a.pct_read, b.pct_read},
                      {a.pct_gemm, b.pct_gemm},
                      {a.floor_us, b.floor_us},
                      {a.x_floor, b.x_floor}})
    EXPECT_TRUE(same(x, y)) << x << " vs " << y;
}

TEST(BenchRecord, DeriveFromTimeAndCeilings) {
  Record r = timed_record();
  derive(r, {.copy_gbps = 3005, .read_gbps = 3040, .gemm_tflops = 766});
  EXPECT_NEAR(r.gbps, r.bytes / 60e-6 / 1e9, 1e-6);
  EXPECT_NEAR(r.tflops, r.flops / 60e-6 / 1e12, 1e-9);
  EXPECT_NEAR(r.pct_copy, 100 * r.gbps / 3005, 1e-9);
  EXPECT_NEAR(r.pct_read, 100 * r.gbps / 3040, 1e-9);
  EXPECT_NEAR(r.pct_gemm, 100 * r.tflops / 766, 1e-9);
  EXPECT_NEAR(r.floor_us, 50.2, 0.1);
  EXPECT_NEAR(r.x_floor, 60.0 / r.floor_us, 1e-12);
}

TEST(BenchRecord, JsonRoundTripOfOneRecord) {
  Record r = timed_record();
  derive(r, {.copy_gbps = 3005, .read_gbps = 3040, .gemm_tflops = 766});
  const nlohmann::json j = r;
  EXPECT_EQ(j.at("status"), "ok");
  EXPECT_EQ(j.at("config").at("batch"), 16);
  const Record back = nlohmann::json::parse(j.dump()).get<Record>();
  expect_same(r, back);
}

TEST(BenchRecord, ConfigShapeRoundTripsAndOldReportsGetMlasShape) {
  Record r = timed_record();
  r.config.h_kv = 2;
  r.config.page_size = 1;
  r.config.d_qk = 320;
  r.config.d_v = 256;
  const nlohmann::json j = r;
  EXPECT_EQ(j.at("config").at("page_size"), 1);
  EXPECT_EQ(nlohmann::json::parse(j.dump()).get<Record>().config, r.config);
  // A report written before the shape fields existed.
  nlohmann::json old = j;
  for (const char* key : {"h_kv", "page_size", "d_qk", "d_v"}) old["config"].erase(key);
  const BenchConfig back = old.get<Record>().config;
  EXPECT_EQ(back.h_kv, 1);
  EXPECT_EQ(back.page_size, 64);
  EXPECT_EQ(back.d_qk, 576);
  EXPECT_EQ(back.d_v, 512);
}

TEST(BenchRecord, AbsentFiguresAreNullInJson) {
  Record r = timed_record();
  r.outcome = Outcome::kFailed;
  r.us = r.plan_us = kNaN;
  derive(r, {.copy_gbps = 3005, .read_gbps = 3040});
  const nlohmann::json j = r;
  EXPECT_TRUE(j.at("us").is_null());
  EXPECT_TRUE(j.at("gbps").is_null());
  EXPECT_TRUE(j.at("plan_us").is_null());
  EXPECT_EQ(j.at("status"), "FAILED");
  const std::string text = j.dump();
  EXPECT_EQ(text.find("NaN"), std::string::npos);
  expect_same(r, nlohmann::json::parse(text).get<Record>());
}

TEST(BenchRecord, JsonRoundTripOfAReport) {
  const Report rep = sample_report();
  const nlohmann::json j = rep;
  EXPECT_EQ(j.at("schema"), kSchema);
  EXPECT_EQ(j.at("synthetic"), false);
  EXPECT_EQ(j.at("machine").at("compute_capability"), "9.0");
  EXPECT_EQ(j.at("records").size(), 3u);
  const Report back = nlohmann::json::parse(j.dump(2)).get<Report>();
  EXPECT_EQ(back.machine.gpu, rep.machine.gpu);
  EXPECT_EQ(back.machine.cc_major, 9);
  EXPECT_EQ(back.machine.l2_bytes, rep.machine.l2_bytes);
  EXPECT_EQ(back.machine.date, rep.machine.date);
  EXPECT_EQ(back.method.iters, 30);
  EXPECT_EQ(back.method.l2_flush_bytes, rep.method.l2_flush_bytes);
  EXPECT_EQ(back.ceilings.copy_gbps, 3005);
  EXPECT_EQ(back.ceilings.gemm_n, 8192);
  ASSERT_EQ(back.records.size(), rep.records.size());
  for (size_t i = 0; i < rep.records.size(); ++i) expect_same(rep.records[i], back.records[i]);
}

TEST(BenchRecord, RejectsOtherSchemas) {
  nlohmann::json j = sample_report();
  j["schema"] = "something-else/7";
  EXPECT_THROW(j.get<Report>(), std::runtime_error);
}

TEST(BenchRecord, OutcomeNamesRoundTrip) {
  for (Outcome o : {Outcome::kOk, Outcome::kFailed, Outcome::kNotAvailable, Outcome::kUnsupported,
                    Outcome::kError, Outcome::kSkipped})
    EXPECT_EQ(outcome_from_string(to_string(o)), o);
}

TEST(BenchRecord, CsvRowsMatchTheHeader) {
  const Report rep = sample_report();
  const std::string csv = to_csv(rep);
  std::istringstream lines(csv);
  std::string header, line;
  std::getline(lines, header);
  EXPECT_EQ(header, csv_header());
  int rows = 0;
  while (std::getline(lines, line)) {
    ++rows;
    // Count separators outside quotes.
    int fields = 1;
    bool quoted = false;
    for (char ch : line) {
      if (ch == '"') quoted = !quoted;
      if (ch == ',' && !quoted) ++fields;
    }
    EXPECT_EQ(fields, static_cast<int>(csv_columns().size())) << line;
  }
  EXPECT_EQ(rows, 3);
  EXPECT_NE(csv.find("\"PASS max_abs=1e-4, \"\"quoted\"\"\""), std::string::npos);  // RFC 4180 quoting
  EXPECT_NE(csv.find(",not available,"), std::string::npos);
}

TEST(BenchTable, AlignedWithRatiosToEtap) {
  const Report rep = sample_report();
  EXPECT_NEAR(ratio_to_etap(rep, rep.records[2]), 2.0, 1e-12);
  EXPECT_TRUE(std::isnan(ratio_to_etap(rep, rep.records[0])));
  EXPECT_TRUE(std::isnan(ratio_to_etap(rep, rep.records[1])));

  const std::string table = format_table(rep);
  std::istringstream lines(table);
  std::string header, rule, line;
  std::getline(lines, header);
  std::getline(lines, rule);
  EXPECT_EQ(header.rfind("impl", 0), 0u);
  EXPECT_NE(header.find("µs"), std::string::npos);
  EXPECT_NE(header.find("×floor"), std::string::npos);
  // The µs column ends at the same display column in every row.
  const size_t us_end = detail::display_width(header.substr(0, header.find("µs") + std::string("µs").size()));
  int rows = 0;
  while (std::getline(lines, line)) {
    ++rows;
    const std::string cell = rows == 2 ? "n/a" : rows == 1 ? "60.0" : "120.0";
    const size_t at = line.find(cell);
    ASSERT_NE(at, std::string::npos) << line;
    EXPECT_EQ(detail::display_width(line.substr(0, at + cell.size())), us_end) << line;
  }
  EXPECT_EQ(rows, 3);
  EXPECT_NE(table.find("2.00"), std::string::npos);  // cublas ×etap
  EXPECT_NE(table.find("launch_decode_padded is not built"), std::string::npos);
  EXPECT_NE(header.find("%gemm"), std::string::npos);
  // MLA's shape everywhere: no h_kv, page or d columns.
  EXPECT_EQ(header.find("page"), std::string::npos);
  EXPECT_EQ(header.find("h_kv"), std::string::npos);
}

TEST(BenchTable, ShapeColumnsAppearWhereSomeRecordLeavesMlasShape) {
  Report rep = sample_report();
  for (Record& r : rep.records) r.config.page_size = 16;  // the padded record stays "not available"
  Record other = rep.records[0];
  other.config.d_qk = 320;
  other.config.d_v = 256;
  rep.records.push_back(other);
  const std::string table = format_table(rep);
  const std::string header = table.substr(0, table.find('\n'));
  EXPECT_NE(header.find("page"), std::string::npos);
  EXPECT_NE(header.find(" d "), std::string::npos);
  EXPECT_EQ(header.find("h_kv"), std::string::npos);
  EXPECT_NE(table.find("320/256"), std::string::npos);
  EXPECT_NE(table.find("576/512"), std::string::npos);
  EXPECT_NE(table.find("n/a"), std::string::npos);
  EXPECT_EQ(table.find("not available"), std::string::npos);
  EXPECT_EQ(table.find("error"), std::string::npos);
}

TEST(BenchRecord, StoredSampleIsASyntheticReport) {
  std::ifstream f(std::string(ETAP_TEST_DATA_DIR) + "/bench_sample.json");
  ASSERT_TRUE(f.good());
  const Report rep = nlohmann::json::parse(f).get<Report>();
  EXPECT_TRUE(rep.synthetic);  // hand-made numbers for the plot test, never to be read as measurements
  EXPECT_NE(rep.machine.gpu.find("SYNTHETIC"), std::string::npos);
  EXPECT_FALSE(rep.records.empty());
}

}  // namespace
}  // namespace etap::bench
