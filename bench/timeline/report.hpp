// The timeline tool's arithmetic on the probe's records (decode/kernel/timeline_events.hpp): per CTA, the
// segments with their events in µs from the CTA's entry, and a summary over CTAs. Plain C++ (header only),
// unit-tested on the CPU with synthetic records (tests/cpu/test_bench_timeline.cpp).
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <iterator>
#include <limits>
#include <string>
#include <vector>

#include "decode/kernel/timeline_events.hpp"

namespace etap::bench::timeline {

using decoding::timeline::Event;
using decoding::timeline::kRoles;
using decoding::timeline::Role;
using decoding::timeline::Stamp;

inline constexpr double kNone = std::numeric_limits<double>::quiet_NaN();

// One role's records as the device left them: `made` counts every probe, `stamps` the ones that fit.
struct RoleLog {
  std::vector<Stamp> stamps;
  uint32_t made = 0;
};

struct CtaLog {
  int32_t x = 0, y = 0;  // blockIdx
  std::array<RoleLog, kRoles> roles;
};

// Which counter gives the intervals inside a CTA: %globaltimer (ns), or the SM's %clock at a calibrated rate
// (for a globaltimer that steps coarsely). Across CTAs only the globaltimer is comparable.
struct TimeBase {
  bool sm_clock = false;
  double cycles_per_us = 0;
};

// A segment as the CTA's roles saw it, in µs from the CTA's entry (kNone: not recorded).
struct SegmentTimes {
  int32_t request = -1;
  double start = kNone;                                 // consumer 0 began the segment (before its Q wait)
  double producer_start = kNone;                        // the producer began it
  double q_issued = kNone, first_issued = kNone;        // producer: Q TMA, first block's TMA
  double table_read = kNone;                            // producer: the first page id arrived (whole blocks)
  double q_landed = kNone, first_landed = kNone;        // consumer 0: Q wait, first block wait returned
  std::vector<double> block_ends;                       // consumer 0: each block's stage released
  std::vector<double> blocks_issued, blocks_landed;     // producer: each block's TMA; consumer 0: its wait
  double last_end1 = kNone;                             // consumer 1: its last block released
  double epilogue_begin = kNone, epilogue_end = kNone;  // consumer 0
  double epilogue_end1 = kNone;                         // consumer 1
};

struct CtaTimeline {
  int32_t x = 0, y = 0;
  double entry_us = kNone;  // globaltimer, from the grid's earliest entry
  double exit = kNone;      // the last role's exit, from the CTA's entry
  std::vector<SegmentTimes> segments;
  uint32_t dropped = 0;  // records past the capacity
};

namespace detail {

inline double micros_between(const Stamp& from, const Stamp& to, const TimeBase& base) {
  if (base.sm_clock)
    return static_cast<double>(static_cast<uint32_t>(to.clock - from.clock)) / base.cycles_per_us;
  return (static_cast<double>(to.global_ns) - static_cast<double>(from.global_ns)) * 1e-3;
}

inline const Stamp* first_event(const RoleLog& log, Event e) {
  for (const Stamp& s : log.stamps)
    if (decoding::timeline::event_of(s.info) == e) return &s;
  return nullptr;
}

inline void set_once(double& slot, double t) {
  if (std::isnan(slot)) slot = t;
}

}  // namespace detail

// The CTA's entry: the earliest kEntry of its roles (nullptr when none was recorded).
inline const Stamp* cta_entry(const CtaLog& cta) {
  const Stamp* entry = nullptr;
  for (const RoleLog& log : cta.roles)
    if (const Stamp* s = detail::first_event(log, Event::kEntry);
        s && (!entry || s->global_ns < entry->global_ns))
      entry = s;
  return entry;
}

// Segments are counted per role by its kSegmentBegin (every role walks the same segments, schedule.cuh).
inline CtaTimeline build_timeline(const CtaLog& cta, const TimeBase& base, uint64_t grid_entry_ns) {
  CtaTimeline out;
  out.x = cta.x;
  out.y = cta.y;
  const Stamp* entry = cta_entry(cta);
  if (entry == nullptr) return out;
  out.entry_us = (static_cast<double>(entry->global_ns) - static_cast<double>(grid_entry_ns)) * 1e-3;
  for (int r = 0; r < kRoles; ++r) {
    const RoleLog& log = cta.roles[r];
    if (log.made > log.stamps.size()) out.dropped += log.made - static_cast<uint32_t>(log.stamps.size());
    int segment = -1;
    for (const Stamp& s : log.stamps) {
      const double t = detail::micros_between(*entry, s, base);
      const Event e = decoding::timeline::event_of(s.info);
      if (e == Event::kSegmentBegin) {
        ++segment;
        if (static_cast<int>(out.segments.size()) <= segment) out.segments.resize(segment + 1);
      }
      if (e == Event::kExit) out.exit = std::isnan(out.exit) ? t : std::max(out.exit, t);
      if (segment < 0) continue;
      SegmentTimes& seg = out.segments[segment];
      switch (static_cast<Role>(r)) {
        case Role::kProducer:
          if (e == Event::kSegmentBegin) seg.producer_start = t;
          if (e == Event::kQIssued) detail::set_once(seg.q_issued, t);
          if (e == Event::kBlockIssued) {
            detail::set_once(seg.first_issued, t);
            seg.blocks_issued.push_back(t);
          }
          if (e == Event::kTableRead) detail::set_once(seg.table_read, t);
          break;
        case Role::kConsumer0:
          if (e == Event::kSegmentBegin) {
            seg.start = t;
            seg.request = static_cast<int32_t>(decoding::timeline::arg_of(s.info));
          }
          if (e == Event::kQLanded) detail::set_once(seg.q_landed, t);
          if (e == Event::kBlockLanded) {
            detail::set_once(seg.first_landed, t);
            seg.blocks_landed.push_back(t);
          }
          if (e == Event::kBlockEnd) seg.block_ends.push_back(t);
          if (e == Event::kEpilogueBegin) detail::set_once(seg.epilogue_begin, t);
          if (e == Event::kEpilogueEnd) detail::set_once(seg.epilogue_end, t);
          break;
        case Role::kConsumer1:
          if (e == Event::kBlockEnd) seg.last_end1 = t;
          if (e == Event::kEpilogueEnd) detail::set_once(seg.epilogue_end1, t);
          break;
      }
    }
  }
  return out;
}

// Median (the upper one of an even count) and maximum of the samples that are not kNone.
struct Stat {
  double median = kNone, max = kNone;
  size_t n = 0;
};

inline Stat stat_of(std::vector<double> v) {
  v.erase(std::remove_if(v.begin(), v.end(), [](double x) { return std::isnan(x); }), v.end());
  Stat s;
  s.n = v.size();
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  s.median = v[v.size() / 2];
  s.max = v.back();
  return s;
}

// The summary's rows: each a quantity per segment (or per block, per CTA) over every CTA.
struct Summary {
  Stat q_wait;        // Q landed − segment start (consumer 0)
  Stat q_latency;     // Q landed − Q issued (producer → consumer 0)
  Stat first_block;   // first block landed − Q landed
  Stat table_read;    // first page id arrived − Q issued (producer; whole-block loads only)
  Stat first_issue;   // first block's TMA issued − first page id arrived
  Stat first_flight;  // first block landed − its TMA issued
  Stat per_block;     // between consecutive block ends; the first from the first block's landing
  Stat block_flight;  // each block: consumer 0's wait returned − the producer's TMA issue
  Stat data_wait;  // each block after the first: its wait returned − the previous block's end (consumer 0)
  Stat epilogue;   // epilogue end − begin (consumer 0)
  Stat gap;        // next segment's start − this epilogue's end
  Stat switch_time;  // next segment's first block landed − this segment's last block end
  Stat segments;     // segments per CTA
  Stat cta_end;      // CTA exit − CTA entry (the CTA's own time base)
  Stat grid_end;     // CTA entry (globaltimer, from the grid's earliest) + its exit: when the CTA ends
  uint32_t dropped = 0;
};

inline Summary summarise(const std::vector<CtaTimeline>& ctas) {
  std::vector<double> q_wait, q_latency, first_block, table_read, first_issue, first_flight, per_block,
      block_flight, data_wait, epilogue, gap, switch_time, segments, cta_end, grid_end;
  Summary s;
  for (const CtaTimeline& c : ctas) {
    s.dropped += c.dropped;
    segments.push_back(static_cast<double>(c.segments.size()));
    cta_end.push_back(c.exit);
    grid_end.push_back(c.entry_us + c.exit);
    for (size_t i = 0; i < c.segments.size(); ++i) {
      const SegmentTimes& g = c.segments[i];
      q_wait.push_back(g.q_landed - g.start);
      q_latency.push_back(g.q_landed - g.q_issued);
      first_block.push_back(g.first_landed - g.q_landed);
      if (!std::isnan(g.table_read)) {
        table_read.push_back(g.table_read - g.q_issued);
        first_issue.push_back(g.first_issued - g.table_read);
      }
      first_flight.push_back(g.first_landed - g.first_issued);
      double previous = g.first_landed;
      for (double end : g.block_ends) {
        per_block.push_back(end - previous);
        previous = end;
      }
      const size_t landed = std::min(g.blocks_issued.size(), g.blocks_landed.size());
      for (size_t k = 0; k < landed; ++k) block_flight.push_back(g.blocks_landed[k] - g.blocks_issued[k]);
      for (size_t k = 1; k < g.blocks_landed.size() && k <= g.block_ends.size(); ++k)
        data_wait.push_back(g.blocks_landed[k] - g.block_ends[k - 1]);
      epilogue.push_back(g.epilogue_end - g.epilogue_begin);
      if (i + 1 < c.segments.size()) {
        const SegmentTimes& next = c.segments[i + 1];
        gap.push_back(next.start - g.epilogue_end);
        if (!g.block_ends.empty()) switch_time.push_back(next.first_landed - g.block_ends.back());
      }
    }
  }
  s.q_wait = stat_of(q_wait);
  s.q_latency = stat_of(q_latency);
  s.first_block = stat_of(first_block);
  s.table_read = stat_of(table_read);
  s.first_issue = stat_of(first_issue);
  s.first_flight = stat_of(first_flight);
  s.per_block = stat_of(per_block);
  s.block_flight = stat_of(block_flight);
  s.data_wait = stat_of(data_wait);
  s.epilogue = stat_of(epilogue);
  s.gap = stat_of(gap);
  s.switch_time = stat_of(switch_time);
  s.segments = stat_of(segments);
  s.cta_end = stat_of(cta_end);
  s.grid_end = stat_of(grid_end);
  return s;
}

// The smallest positive step between successive globaltimer stamps of one role: an upper bound on the
// timer's update interval (0 when no two stamps differ).
inline uint64_t globaltimer_step(const std::vector<CtaLog>& ctas) {
  uint64_t step = 0;
  for (const CtaLog& c : ctas)
    for (const RoleLog& log : c.roles)
      for (size_t i = 1; i < log.stamps.size(); ++i) {
        const uint64_t a = log.stamps[i - 1].global_ns, b = log.stamps[i].global_ns;
        if (b > a && (step == 0 || b - a < step)) step = b - a;
      }
  return step;
}

// SM cycles per µs: the median over CTAs of %clock / %globaltimer between a role's first and last stamp,
// over spans of at least min_span_us (a coarse globaltimer then errs by step / span); 0 when none is.
inline double calibrate_clock(const std::vector<CtaLog>& ctas, double min_span_us = 20.0) {
  std::vector<double> rates;
  for (const CtaLog& c : ctas)
    for (const RoleLog& log : c.roles) {
      if (log.stamps.size() < 2) continue;
      const Stamp &a = log.stamps.front(), &b = log.stamps.back();
      const double span_us = (static_cast<double>(b.global_ns) - static_cast<double>(a.global_ns)) * 1e-3;
      if (span_us < min_span_us) continue;
      rates.push_back(static_cast<double>(static_cast<uint32_t>(b.clock - a.clock)) / span_us);
    }
  return rates.empty() ? 0.0 : stat_of(rates).median;
}

// ---- printing ------------------------------------------------------------------------------------------

inline void print_stat_row(std::FILE* f, const char* name, const Stat& s) {
  if (s.n == 0) {
    std::fprintf(f, "  %-44s %9s %9s %7zu\n", name, "-", "-", s.n);
    return;
  }
  std::fprintf(f, "  %-44s %9.2f %9.2f %7zu\n", name, s.median, s.max, s.n);
}

inline void print_summary(std::FILE* f, const Summary& s) {
  std::fprintf(f, "  %-44s %9s %9s %7s\n", "quantity (us)", "median", "max", "n");
  print_stat_row(f, "Q wait (Q landed - segment start)", s.q_wait);
  print_stat_row(f, "Q latency (Q landed - Q TMA issued)", s.q_latency);
  print_stat_row(f, "first block (block landed - Q landed)", s.first_block);
  print_stat_row(f, "table read (first page id - Q TMA issued)", s.table_read);
  print_stat_row(f, "first issue (block TMA - first page id)", s.first_issue);
  print_stat_row(f, "first flight (block landed - block TMA)", s.first_flight);
  print_stat_row(f, "per block (between block ends)", s.per_block);
  print_stat_row(f, "block flight (landed - TMA issued)", s.block_flight);
  print_stat_row(f, "data wait (landed - previous block end)", s.data_wait);
  print_stat_row(f, "epilogue (end - begin)", s.epilogue);
  print_stat_row(f, "gap (next segment start - epilogue end)", s.gap);
  print_stat_row(f, "switch (next first landed - last block end)", s.switch_time);
  print_stat_row(f, "segments per CTA (count)", s.segments);
  print_stat_row(f, "CTA end (exit - CTA entry)", s.cta_end);
  print_stat_row(f, "grid end (exit - earliest entry of the grid)", s.grid_end);
  if (s.dropped > 0)
    std::fprintf(f, "  %u records dropped past the capacity (raise --capacity)\n", s.dropped);
}

// A detail-table cell: 7 characters, "-" for an event that was not recorded.
inline std::string cell(double t) {
  char buf[32];
  if (std::isnan(t))
    std::snprintf(buf, sizeof buf, "%7s", "-");
  else
    std::snprintf(buf, sizeof buf, "%7.2f", t);
  return buf;
}

inline void print_cta(std::FILE* f, const CtaTimeline& c, size_t max_segments) {
  std::fprintf(f, "CTA (%d, %d): entry +%.2f us in the grid, %zu segments, exit %.2f us\n", c.x, c.y,
               c.entry_us, c.segments.size(), c.exit);
  std::fprintf(f, "  %3s %6s %7s %7s %7s %7s %7s %7s %4s %7s %7s %7s %7s %7s %7s\n", "seg", "req", "start",
               "p.start", "Q.iss", "B0.iss", "Q.land", "B0.land", "blks", "B0.end", "Bn.end", "epi.beg",
               "epi.end", "wg1.Bn", "wg1.epi");
  for (size_t i = 0; i < c.segments.size() && i < max_segments; ++i) {
    const SegmentTimes& g = c.segments[i];
    const double first_end = g.block_ends.empty() ? kNone : g.block_ends.front();
    const double last_end = g.block_ends.empty() ? kNone : g.block_ends.back();
    std::fprintf(f, "  %3zu %6d %s %s %s %s %s %s %4zu %s %s %s %s %s %s\n", i, g.request,
                 cell(g.start).c_str(), cell(g.producer_start).c_str(), cell(g.q_issued).c_str(),
                 cell(g.first_issued).c_str(), cell(g.q_landed).c_str(), cell(g.first_landed).c_str(),
                 g.block_ends.size(), cell(first_end).c_str(), cell(last_end).c_str(),
                 cell(g.epilogue_begin).c_str(), cell(g.epilogue_end).c_str(), cell(g.last_end1).c_str(),
                 cell(g.epilogue_end1).c_str());
  }
  if (c.segments.size() > max_segments)
    std::fprintf(f, "  ... %zu more segments\n", c.segments.size() - max_segments);
}

// The CTAs shown in detail: the one that ends last, then others spread evenly over the grid's order.
inline std::vector<size_t> detail_ctas(const std::vector<CtaTimeline>& ctas, size_t count) {
  std::vector<size_t> picked;
  if (ctas.empty() || count == 0) return picked;
  size_t last = 0;
  for (size_t i = 1; i < ctas.size(); ++i)
    if (ctas[i].entry_us + ctas[i].exit > ctas[last].entry_us + ctas[last].exit) last = i;
  picked.push_back(last);
  const size_t others = std::min(count, ctas.size()) - 1;
  for (size_t k = 0; k < others; ++k) {
    size_t i = others == 1 ? 0 : k * (ctas.size() - 1) / (others - 1);
    while (std::find(picked.begin(), picked.end(), i) != picked.end()) i = (i + 1) % ctas.size();
    picked.push_back(i);
  }
  return picked;
}

// Every record of one CTA, merged over its roles in %clock order: role, event, argument and SM cycles from
// the CTA's first record (the roles share the SM's clock), for reading one block loop step by step.
inline void print_raw(std::FILE* f, const CtaLog& c) {
  static constexpr const char* kNames[] = {"entry",        "segment-begin", "q-issued",   "block-issued",
                                           "q-landed",     "block-landed",  "block-end",  "epilogue-begin",
                                           "epilogue-end", "exit",          "table-read", "scores-done",
                                           "published",    "other-ready",   "exchanged",  "softmax-done"};
  static_assert(std::size(kNames) == static_cast<size_t>(decoding::timeline::Event::kCount));
  struct Row {
    uint32_t clock, info, role;
  };
  std::vector<Row> rows;
  for (uint32_t r = 0; r < kRoles; ++r)
    for (const Stamp& s : c.roles[r].stamps) rows.push_back({s.clock, s.info, r});
  if (rows.empty()) return;
  // Ordered by cycles from any one record (wrap-safe for spans under 2^31 cycles), printed from the earliest.
  const uint32_t any = rows.front().clock;
  std::sort(rows.begin(), rows.end(), [&](const Row& a, const Row& b) {
    return static_cast<int32_t>(a.clock - any) < static_cast<int32_t>(b.clock - any);
  });
  const uint32_t origin = rows.front().clock;
  std::fprintf(f, "\nraw records of CTA (%d, %d): cycles, role (0/1 consumers, 2 producer), event, arg\n",
               c.x, c.y);
  for (const Row& r : rows) {
    const auto e = static_cast<size_t>(decoding::timeline::event_of(r.info));
    std::fprintf(f, "%9d  %u  %-14s %u\n", static_cast<int32_t>(r.clock - origin), r.role,
                 e < std::size(kNames) ? kNames[e] : "?", decoding::timeline::arg_of(r.info));
  }
}

}  // namespace etap::bench::timeline
