// The terminal report: the ceilings and an aligned table, one row per (configuration, implementation).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "record.hpp"

namespace etap::bench {

namespace detail {

// Columns hold "µ" and "×": pad by code points, not bytes.
inline size_t display_width(const std::string& s) {
  size_t n = 0;
  for (unsigned char ch : s) n += (ch & 0xC0) != 0x80;
  return n;
}

inline std::string fixed(double v, int decimals) {
  if (!std::isfinite(v)) return "-";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

}  // namespace detail

// Time of `impl` relative to etap's on the same configuration (how much faster etap is), or NaN.
inline double ratio_to_etap(const Report& report, const Record& r) {
  if (r.impl == "etap" || r.outcome != Outcome::kOk) return kNaN;
  for (const Record& e : report.records)
    if (e.impl == "etap" && e.config == r.config && e.outcome == Outcome::kOk) return r.us / e.us;
  return kNaN;
}

inline std::string format_ceilings(const Report& report) {
  const Ceilings& c = report.ceilings;
  const Machine& m = report.machine;
  std::string s =
      m.gpu + " (" + std::to_string(m.sms) + " SMs, L2 " + std::to_string(m.l2_bytes >> 20) + " MiB";
  if (std::isfinite(m.dram_peak_gbps)) s += ", DRAM peak " + detail::fixed(m.dram_peak_gbps, 0) + " GB/s";
  s += ")\nceilings: copy " + detail::fixed(c.copy_gbps, 0) + " GB/s, read-only " +
       detail::fixed(c.read_gbps, 0) + " GB/s, bf16 GEMM " + detail::fixed(c.gemm_tflops, 1) + " TFLOP/s\n";
  return s;
}

// The µs cell of a record that has no time: its outcome, "n/a" where the implementation does not cover the
// configuration by design (the padded baseline beyond one 64-row tile of the MLA shape).
inline std::string outcome_cell(Outcome o) {
  return o == Outcome::kNotAvailable ? "n/a" : to_string(o);
}

// Columns h_kv, page and d appear only when some record leaves MLA's shape (h_kv 1, page 64, d 576/512).
inline std::string format_table(const Report& report) {
  const auto any = [&report](auto differs) {
    return std::any_of(report.records.begin(), report.records.end(),
                       [&](const Record& r) { return differs(r.config); });
  };
  const bool show_h_kv = any([](const BenchConfig& c) { return c.h_kv != 1; });
  const bool show_page = any([](const BenchConfig& c) { return c.page_size != kMlaPageSize; });
  const bool show_dims = any([](const BenchConfig& c) { return c.d_qk != kDimQK || c.d_v != kDimV; });
  std::vector<std::string> header = {"impl", "b", "s_k", "h_q", "s_q"};
  if (show_h_kv) header.push_back("h_kv");
  if (show_page) header.push_back("page");
  if (show_dims) header.push_back("d");
  for (const char* name :
       {"µs", "GB/s", "TFLOP/s", "%copy", "%read", "%gemm", "×floor", "×etap", "plan µs", "note"})
    header.push_back(name);
  std::vector<std::vector<std::string>> rows;
  for (const Record& r : report.records) {
    const BenchConfig& c = r.config;
    std::string s_k = (c.varlen ? "~" : "") + std::to_string(c.seqlen);
    std::string s_q = (c.varlen_q ? "≤" : "") + std::to_string(c.s_q) + (c.causal ? "c" : "");
    std::vector<std::string> row = {r.impl, std::to_string(c.batch), s_k, std::to_string(c.h_q), s_q};
    if (show_h_kv) row.push_back(std::to_string(c.h_kv));
    if (show_page) row.push_back(std::to_string(c.page_size));
    if (show_dims) row.push_back(std::to_string(c.d_qk) + "/" + std::to_string(c.d_v));
    const auto add = [&row](double value, int decimals) { row.push_back(detail::fixed(value, decimals)); };
    if (r.outcome == Outcome::kOk) {
      add(r.us, 1);
      add(r.gbps, 0);
      add(r.tflops, 1);
      add(r.pct_copy, 1);
      add(r.pct_read, 1);
      add(r.pct_gemm, 1);
      add(r.x_floor, 2);
      add(ratio_to_etap(report, r), 2);
      add(r.plan_us, 1);
      row.push_back((c.dtype != "bf16" ? c.dtype : "") +
                    (c.kv_format != "dense" ? " kv=" + c.kv_format : ""));
    } else {
      // The outcome in the µs column, dashes for the other figures, then why.
      row.push_back(outcome_cell(r.outcome));
      row.resize(header.size() - 1, "-");
      row.push_back(r.message);
    }
    rows.push_back(std::move(row));
  }

  std::vector<size_t> width(header.size(), 0);
  for (size_t i = 0; i < header.size(); ++i) width[i] = detail::display_width(header[i]);
  for (const auto& row : rows)
    for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], detail::display_width(row[i]));

  // Text columns (impl, note) left-aligned, numbers right-aligned; the note is not padded.
  auto line = [&](const std::vector<std::string>& cells) {
    std::string s;
    for (size_t i = 0; i < cells.size(); ++i) {
      const size_t pad = width[i] - detail::display_width(cells[i]);
      const bool left = i == 0 || i + 1 == cells.size();
      if (i) s += "  ";
      if (left) {
        s += cells[i];
        if (i + 1 < cells.size()) s += std::string(pad, ' ');
      } else {
        s += std::string(pad, ' ') + cells[i];
      }
    }
    while (!s.empty() && s.back() == ' ') s.pop_back();
    return s + "\n";
  };

  std::string out = line(header);
  std::string rule;
  for (size_t i = 0; i < header.size(); ++i) rule += (i ? "  " : "") + std::string(width[i], '-');
  out += rule + "\n";
  for (size_t i = 0; i < rows.size(); ++i) {
    // A blank line between configurations keeps the side-by-side implementations together.
    if (i > 0 && !(report.records[i].config == report.records[i - 1].config)) out += "\n";
    out += line(rows[i]);
  }
  return out;
}

}  // namespace etap::bench
