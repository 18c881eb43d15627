// The benchmark's output schema: machine, method, ceilings and one record per (configuration,
// implementation), with JSON and CSV serialisation. Pure host code (nlohmann/json), unit-tested on the CPU;
// bench/plot.py reads the JSON. Absent figures (an implementation that was not timed) are NaN here and null
// in JSON.
#pragma once

#include <cmath>
#include <cstdint>
#include <iomanip>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "metrics.hpp"
#include "outcome.hpp"
#include "sweeps.hpp"

namespace etap::bench {

inline constexpr const char* kSchema = "etap-bench/1";

struct Machine {
  std::string gpu;
  int32_t device = 0, sms = 0, cc_major = 0, cc_minor = 0;
  int64_t l2_bytes = 0, memory_bytes = 0;
  int64_t sm_clock_khz = 0, memory_clock_khz = 0, bus_width_bits = 0;
  double dram_peak_gbps = kNaN;  // from clock and bus width; the measured ceilings are what counts
  int32_t driver_version = 0, runtime_version = 0, cublas_version = 0;
  std::string etap_version, date;  // date: ISO 8601 UTC of the run
};

struct Ceilings {
  double copy_gbps = kNaN;    // cudaMemcpyAsync device to device, bytes read + written
  double read_gbps = kNaN;    // read-only streaming kernel, 16-byte loads
  double gemm_tflops = kNaN;  // cublasGemmEx bf16 in/out, fp32 compute
  int64_t copy_bytes = 0, read_bytes = 0, gemm_n = 0;
};

struct Method {
  std::string timer = "cudaEvent pairs around each call";
  std::string statistic = "median";
  int32_t iters = 0, warmup = 0;
  int64_t l2_flush_bytes = 0;
  bool graph = false;
  int32_t graph_calls = 0;
  int32_t num_sms = 0;  // 0 = all
  bool checked = true;  // every implementation compared with the CPU reference before timing
  std::string check_problem;
  std::string notes;
  std::string bytes_formula = "b*mean_s_k*h_kv*d_qk*2 + q + out (bf16; MLA: d_qk = 576, h_kv = 1)";
  std::string flops_formula = "2*b*s_q*h_q*mean_s_k*(d_qk+d_v) (MLA: 576+512)";
};

struct Record {
  std::string impl;
  BenchConfig config;
  Outcome outcome = Outcome::kSkipped;
  std::string message;     // why not ok, or the check's error statistics
  double mean_seqlen = 0;  // s̄_k actually used (varlen: of the drawn lengths)
  int32_t max_seqlen = 0;
  double bytes = 0, flops = 0, kv_bytes = 0;
  int32_t samples = 0;
  double us = kNaN, us_min = kNaN, us_max = kNaN;  // the decode call; median, min, max over `samples`
  double plan_us = kNaN;                           // the plan kernel alone (etap, padded)
  double gbps = kNaN, tflops = kNaN, pct_copy = kNaN, pct_read = kNaN, floor_us = kNaN, x_floor = kNaN;
  double pct_gemm = kNaN;  // TFLOP/s as a share of the measured bf16 GEMM ceiling (compute-bound shapes)
};

// Fills the derived figures of an `ok` record from its time and the ceilings.
inline void derive(Record& r, const Ceilings& c) {
  r.gbps = gb_per_s(r.bytes, r.us);
  r.tflops = tflop_per_s(r.flops, r.us);
  r.pct_copy = percent_of(r.gbps, c.copy_gbps);
  r.pct_read = percent_of(r.gbps, c.read_gbps);
  r.pct_gemm = percent_of(r.tflops, c.gemm_tflops);
  r.floor_us = floor_us(r.kv_bytes, c.copy_gbps);
  r.x_floor = r.floor_us > 0 ? r.us / r.floor_us : kNaN;
}

struct Report {
  Machine machine;
  Method method;
  Ceilings ceilings;
  std::vector<Record> records;
  bool synthetic = false;  // true only for hand-made sample files (tests), never for measurements
};

// JSON has no NaN: absent numbers are null.
namespace detail {
inline nlohmann::json number(double v) {
  return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr);
}
inline double number(const nlohmann::json& j, const char* key) {
  if (!j.contains(key) || j.at(key).is_null()) return kNaN;
  return j.at(key).get<double>();
}
template <typename T>
void get_if(const nlohmann::json& j, const char* key, T& v) {
  if (j.contains(key) && !j.at(key).is_null()) j.at(key).get_to(v);
}
}  // namespace detail

// Missing keys keep the defaults (reports written before a field existed still load).
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(BenchConfig, sweep, batch, seqlen, h_q, s_q, causal, varlen,
                                                varlen_seed, dtype, h_kv, page_size, d_qk, d_v, kv_format, varlen_q)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(Method, timer, statistic, iters, warmup, l2_flush_bytes,
                                                graph, graph_calls, num_sms, checked, check_problem, notes,
                                                bytes_formula, flops_formula)

inline void to_json(nlohmann::json& j, const Machine& m) {
  j = {{"gpu", m.gpu},
       {"device", m.device},
       {"sms", m.sms},
       {"compute_capability", std::to_string(m.cc_major) + "." + std::to_string(m.cc_minor)},
       {"l2_bytes", m.l2_bytes},
       {"memory_bytes", m.memory_bytes},
       {"sm_clock_khz", m.sm_clock_khz},
       {"memory_clock_khz", m.memory_clock_khz},
       {"bus_width_bits", m.bus_width_bits},
       {"dram_peak_gbps", detail::number(m.dram_peak_gbps)},
       {"driver_version", m.driver_version},
       {"runtime_version", m.runtime_version},
       {"cublas_version", m.cublas_version},
       {"etap_version", m.etap_version},
       {"date", m.date}};
}
inline void from_json(const nlohmann::json& j, Machine& m) {
  detail::get_if(j, "gpu", m.gpu);
  detail::get_if(j, "device", m.device);
  detail::get_if(j, "sms", m.sms);
  if (j.contains("compute_capability")) {
    const std::string cc = j.at("compute_capability").get<std::string>();
    if (const auto dot = cc.find('.'); dot != std::string::npos) {
      m.cc_major = std::stoi(cc.substr(0, dot));
      m.cc_minor = std::stoi(cc.substr(dot + 1));
    }
  }
  detail::get_if(j, "l2_bytes", m.l2_bytes);
  detail::get_if(j, "memory_bytes", m.memory_bytes);
  detail::get_if(j, "sm_clock_khz", m.sm_clock_khz);
  detail::get_if(j, "memory_clock_khz", m.memory_clock_khz);
  detail::get_if(j, "bus_width_bits", m.bus_width_bits);
  m.dram_peak_gbps = detail::number(j, "dram_peak_gbps");
  detail::get_if(j, "driver_version", m.driver_version);
  detail::get_if(j, "runtime_version", m.runtime_version);
  detail::get_if(j, "cublas_version", m.cublas_version);
  detail::get_if(j, "etap_version", m.etap_version);
  detail::get_if(j, "date", m.date);
}

inline void to_json(nlohmann::json& j, const Ceilings& c) {
  j = {{"copy_gbps", detail::number(c.copy_gbps)},
       {"read_gbps", detail::number(c.read_gbps)},
       {"gemm_tflops", detail::number(c.gemm_tflops)},
       {"copy_bytes", c.copy_bytes},
       {"read_bytes", c.read_bytes},
       {"gemm_n", c.gemm_n}};
}
inline void from_json(const nlohmann::json& j, Ceilings& c) {
  c.copy_gbps = detail::number(j, "copy_gbps");
  c.read_gbps = detail::number(j, "read_gbps");
  c.gemm_tflops = detail::number(j, "gemm_tflops");
  detail::get_if(j, "copy_bytes", c.copy_bytes);
  detail::get_if(j, "read_bytes", c.read_bytes);
  detail::get_if(j, "gemm_n", c.gemm_n);
}

inline void to_json(nlohmann::json& j, const Record& r) {
  j = {{"impl", r.impl},
       {"config", r.config},
       {"status", to_string(r.outcome)},
       {"message", r.message},
       {"mean_seqlen", r.mean_seqlen},
       {"max_seqlen", r.max_seqlen},
       {"bytes", r.bytes},
       {"kv_bytes", r.kv_bytes},
       {"flops", r.flops},
       {"samples", r.samples},
       {"us", detail::number(r.us)},
       {"us_min", detail::number(r.us_min)},
       {"us_max", detail::number(r.us_max)},
       {"plan_us", detail::number(r.plan_us)},
       {"gbps", detail::number(r.gbps)},
       {"tflops", detail::number(r.tflops)},
       {"pct_copy", detail::number(r.pct_copy)},
       {"pct_read", detail::number(r.pct_read)},
       {"pct_gemm", detail::number(r.pct_gemm)},
       {"floor_us", detail::number(r.floor_us)},
       {"x_floor", detail::number(r.x_floor)}};
}
inline void from_json(const nlohmann::json& j, Record& r) {
  detail::get_if(j, "impl", r.impl);
  detail::get_if(j, "config", r.config);
  if (j.contains("status")) r.outcome = outcome_from_string(j.at("status").get<std::string>());
  detail::get_if(j, "message", r.message);
  detail::get_if(j, "mean_seqlen", r.mean_seqlen);
  detail::get_if(j, "max_seqlen", r.max_seqlen);
  detail::get_if(j, "bytes", r.bytes);
  detail::get_if(j, "kv_bytes", r.kv_bytes);
  detail::get_if(j, "flops", r.flops);
  detail::get_if(j, "samples", r.samples);
  r.us = detail::number(j, "us");
  r.us_min = detail::number(j, "us_min");
  r.us_max = detail::number(j, "us_max");
  r.plan_us = detail::number(j, "plan_us");
  r.gbps = detail::number(j, "gbps");
  r.tflops = detail::number(j, "tflops");
  r.pct_copy = detail::number(j, "pct_copy");
  r.pct_read = detail::number(j, "pct_read");
  r.pct_gemm = detail::number(j, "pct_gemm");
  r.floor_us = detail::number(j, "floor_us");
  r.x_floor = detail::number(j, "x_floor");
}

inline void to_json(nlohmann::json& j, const Report& r) {
  j = {{"schema", kSchema},  {"synthetic", r.synthetic}, {"machine", r.machine},
       {"method", r.method}, {"ceilings", r.ceilings},   {"records", r.records}};
}
inline void from_json(const nlohmann::json& j, Report& r) {
  if (j.value("schema", std::string{}) != kSchema)
    throw std::runtime_error(std::string("not an etap bench report (expected schema ") + kSchema + ")");
  detail::get_if(j, "synthetic", r.synthetic);
  detail::get_if(j, "machine", r.machine);
  detail::get_if(j, "method", r.method);
  detail::get_if(j, "ceilings", r.ceilings);
  detail::get_if(j, "records", r.records);
}

// CSV: one line per record, the machine's card and the ceilings repeated so that each line stands alone.
inline const std::vector<std::string>& csv_columns() {
  static const std::vector<std::string> columns = {
      "gpu",      "impl",      "sweep",     "batch",       "seqlen",  "mean_seqlen", "max_seqlen", "h_q",
      "s_q",      "h_kv",      "page_size", "d_qk",        "d_v",     "causal",      "varlen",     "dtype",
      "graph",    "status",    "us",        "us_min",      "us_max",  "plan_us",     "gbps",       "tflops",
      "pct_copy", "pct_read",  "pct_gemm",  "floor_us",    "x_floor", "bytes",       "kv_bytes",   "flops",
      "samples",  "copy_gbps", "read_gbps", "gemm_tflops", "message", "kv_format"};
  return columns;
}

namespace detail {
inline std::string csv_number(double v) {
  if (!std::isfinite(v)) return "";
  std::ostringstream s;
  s << std::setprecision(10) << v;
  return s.str();
}
inline std::string csv_text(const std::string& v) {
  if (v.find_first_of(",\"\n") == std::string::npos) return v;
  std::string quoted = "\"";
  for (char ch : v) quoted += ch == '"' ? std::string("\"\"") : std::string(1, ch);
  return quoted + "\"";
}
}  // namespace detail

inline std::string csv_header() {
  std::string line;
  for (const auto& c : csv_columns()) line += (line.empty() ? "" : ",") + c;
  return line;
}

inline std::string csv_row(const Record& r, const Report& report) {
  using detail::csv_number;
  using detail::csv_text;
  const BenchConfig& c = r.config;
  const std::vector<std::string> fields = {csv_text(report.machine.gpu),
                                           csv_text(r.impl),
                                           csv_text(c.sweep),
                                           std::to_string(c.batch),
                                           std::to_string(c.seqlen),
                                           csv_number(r.mean_seqlen),
                                           std::to_string(r.max_seqlen),
                                           std::to_string(c.h_q),
                                           std::to_string(c.s_q),
                                           std::to_string(c.h_kv),
                                           std::to_string(c.page_size),
                                           std::to_string(c.d_qk),
                                           std::to_string(c.d_v),
                                           c.causal ? "1" : "0",
                                           c.varlen ? "1" : "0",
                                           csv_text(c.dtype),
                                           report.method.graph ? "1" : "0",
                                           csv_text(to_string(r.outcome)),
                                           csv_number(r.us),
                                           csv_number(r.us_min),
                                           csv_number(r.us_max),
                                           csv_number(r.plan_us),
                                           csv_number(r.gbps),
                                           csv_number(r.tflops),
                                           csv_number(r.pct_copy),
                                           csv_number(r.pct_read),
                                           csv_number(r.pct_gemm),
                                           csv_number(r.floor_us),
                                           csv_number(r.x_floor),
                                           csv_number(r.bytes),
                                           csv_number(r.kv_bytes),
                                           csv_number(r.flops),
                                           std::to_string(r.samples),
                                           csv_number(report.ceilings.copy_gbps),
                                           csv_number(report.ceilings.read_gbps),
                                           csv_number(report.ceilings.gemm_tflops),
                                           csv_text(r.message),
                                           csv_text(c.kv_format)};
  std::string line;
  for (size_t i = 0; i < fields.size(); ++i) line += (i ? "," : "") + fields[i];
  return line;
}

inline std::string to_csv(const Report& report) {
  std::string out = csv_header() + "\n";
  for (const Record& r : report.records) out += csv_row(r, report) + "\n";
  return out;
}

}  // namespace etap::bench
