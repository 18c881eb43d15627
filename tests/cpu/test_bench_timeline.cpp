// The timeline tool's arithmetic (bench/timeline/report.hpp) on synthetic probe records: one CTA of two
// segments with hand-placed stamps, the summary's quantities, drops, the SM-clock time base and its
// calibration.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "bench/timeline/report.hpp"

namespace etap::bench::timeline {
namespace {

using decoding::timeline::pack_info;

constexpr uint64_t kT0 = 1'000'000'000;  // an arbitrary globaltimer origin, ns
constexpr double kCyclesPerUs = 2000.0;  // the synthetic SM clock: 2 GHz

Stamp at(double us, Event e, uint32_t arg = 0) {
  const auto ns = static_cast<uint64_t>(us * 1000.0 + 0.5);
  return Stamp{kT0 + ns, static_cast<uint32_t>(us * kCyclesPerUs + 0.5), pack_info(e, arg)};
}

RoleLog log_of(std::vector<Stamp> stamps) {
  RoleLog log;
  log.made = static_cast<uint32_t>(stamps.size());
  log.stamps = std::move(stamps);
  return log;
}

// Segment 0: request 7, 2 blocks; segment 1: request 8, 1 block. Times in µs.
CtaLog two_segments() {
  CtaLog cta;
  cta.x = 3;
  cta.y = 1;
  cta.roles[static_cast<int>(Role::kConsumer0)] = log_of({
      at(1.0, Event::kEntry),
      at(1.5, Event::kSegmentBegin, 7),
      at(4.0, Event::kQLanded),
      at(6.0, Event::kBlockLanded),
      at(9.0, Event::kBlockEnd, 0),
      at(10.0, Event::kBlockLanded),
      at(11.0, Event::kBlockEnd, 1),
      at(11.5, Event::kEpilogueBegin),
      at(13.5, Event::kEpilogueEnd),
      at(14.0, Event::kSegmentBegin, 8),
      at(20.0, Event::kQLanded),
      at(31.0, Event::kBlockLanded),
      at(33.0, Event::kBlockEnd, 2),
      at(33.5, Event::kEpilogueBegin),
      at(34.5, Event::kEpilogueEnd),
      at(35.0, Event::kExit),
  });
  cta.roles[static_cast<int>(Role::kConsumer1)] = log_of({
      at(1.1, Event::kEntry),
      at(1.6, Event::kSegmentBegin, 7),
      at(6.5, Event::kBlockLanded, 0),
      at(9.5, Event::kBlockEnd, 0),
      at(11.2, Event::kBlockEnd, 1),
      at(13.8, Event::kEpilogueEnd),
      at(14.1, Event::kSegmentBegin, 8),
      at(33.2, Event::kBlockEnd, 2),
      at(34.8, Event::kEpilogueEnd),
      at(36.0, Event::kExit),
  });
  cta.roles[static_cast<int>(Role::kProducer)] = log_of({
      at(0.5, Event::kEntry),  // the CTA's entry: the earliest role
      at(1.0, Event::kSegmentBegin, 7),
      at(2.0, Event::kQIssued),
      at(2.25, Event::kTableRead, 0),  // segment 0 only: segment 1's loader records none
      at(2.5, Event::kBlockIssued, 0),
      at(3.0, Event::kBlockIssued, 1),
      at(12.0, Event::kSegmentBegin, 8),
      at(15.0, Event::kQIssued),
      at(16.0, Event::kBlockIssued, 2),
      at(16.5, Event::kExit),
  });
  return cta;
}

TEST(BenchTimeline, SegmentsRelativeToTheEarliestEntry) {
  const CtaTimeline t = build_timeline(two_segments(), TimeBase{}, kT0);
  EXPECT_EQ(t.x, 3);
  EXPECT_EQ(t.y, 1);
  EXPECT_NEAR(t.entry_us, 0.5, 1e-9);
  EXPECT_NEAR(t.exit, 35.5, 1e-9);  // consumer 1's exit, the last
  EXPECT_EQ(t.dropped, 0u);
  ASSERT_EQ(t.segments.size(), 2u);
  const SegmentTimes& s0 = t.segments[0];
  EXPECT_EQ(s0.request, 7);
  EXPECT_NEAR(s0.start, 1.0, 1e-9);
  EXPECT_NEAR(s0.producer_start, 0.5, 1e-9);
  EXPECT_NEAR(s0.q_issued, 1.5, 1e-9);
  EXPECT_NEAR(s0.first_issued, 2.0, 1e-9);  // the first block's TMA, not the second
  EXPECT_NEAR(s0.table_read, 1.75, 1e-9);
  EXPECT_TRUE(std::isnan(t.segments[1].table_read));
  EXPECT_NEAR(s0.q_landed, 3.5, 1e-9);
  EXPECT_NEAR(s0.first_landed, 5.5, 1e-9);  // the first kBlockLanded of the segment
  ASSERT_EQ(s0.block_ends.size(), 2u);
  EXPECT_NEAR(s0.block_ends[1], 10.5, 1e-9);
  EXPECT_NEAR(s0.last_end1, 10.7, 1e-9);
  EXPECT_NEAR(s0.epilogue_end1, 13.3, 1e-9);
  EXPECT_EQ(t.segments[1].request, 8);
  EXPECT_NEAR(t.segments[1].first_landed, 30.5, 1e-9);
}

TEST(BenchTimeline, SummaryQuantities) {
  const std::vector<CtaTimeline> ctas = {build_timeline(two_segments(), TimeBase{}, kT0)};
  const Summary s = summarise(ctas);
  // Q wait: 4.0 − 1.5 and 20.0 − 14.0; the median of two is the upper one.
  EXPECT_EQ(s.q_wait.n, 2u);
  EXPECT_NEAR(s.q_wait.median, 6.0, 1e-9);
  EXPECT_NEAR(s.q_wait.max, 6.0, 1e-9);
  EXPECT_NEAR(s.q_latency.median, 5.0, 1e-9);     // 2.0 (= 4.0 − 2.0) and 5.0 (= 20.0 − 15.0)
  EXPECT_NEAR(s.first_block.median, 11.0, 1e-9);  // 2.0 and 11.0
  // Segment 0 alone has a table read: 2.25 − 2.0 after Q's TMA, 2.5 − 2.25 before the block's TMA.
  EXPECT_EQ(s.table_read.n, 1u);
  EXPECT_NEAR(s.table_read.median, 0.25, 1e-9);
  EXPECT_EQ(s.first_issue.n, 1u);
  EXPECT_NEAR(s.first_issue.median, 0.25, 1e-9);
  // Every block's flight: 6.0 − 2.5, 10.0 − 3.0, 31.0 − 16.0; data wait: block 1 landed 10.0 − block 0
  // ended 9.0.
  EXPECT_EQ(s.block_flight.n, 3u);
  EXPECT_NEAR(s.block_flight.median, 7.0, 1e-9);
  EXPECT_NEAR(s.block_flight.max, 15.0, 1e-9);
  EXPECT_EQ(s.data_wait.n, 1u);
  EXPECT_NEAR(s.data_wait.median, 1.0, 1e-9);
  // First flight: 6.0 − 2.5 and 31.0 − 16.0.
  EXPECT_EQ(s.first_flight.n, 2u);
  EXPECT_NEAR(s.first_flight.median, 15.0, 1e-9);
  // Per block: 9 − 6, 11 − 9, then 33 − 31.
  EXPECT_EQ(s.per_block.n, 3u);
  EXPECT_NEAR(s.per_block.median, 2.0, 1e-9);
  EXPECT_NEAR(s.per_block.max, 3.0, 1e-9);
  EXPECT_NEAR(s.epilogue.median, 2.0, 1e-9);  // 2.0 and 1.0
  // Between the segments only: start 14.0 − epilogue end 13.5; first landed 31.0 − last block end 11.0.
  EXPECT_EQ(s.gap.n, 1u);
  EXPECT_NEAR(s.gap.median, 0.5, 1e-9);
  EXPECT_EQ(s.switch_time.n, 1u);
  EXPECT_NEAR(s.switch_time.median, 20.0, 1e-9);
  EXPECT_NEAR(s.segments.median, 2.0, 1e-9);
  EXPECT_NEAR(s.cta_end.median, 35.5, 1e-9);
  EXPECT_NEAR(s.grid_end.median, 36.0, 1e-9);  // entry 0.5 after the grid's origin + 35.5
  EXPECT_EQ(s.dropped, 0u);
}

TEST(BenchTimeline, DroppedRecordsAreCountedAndMissingEventsSkipped) {
  CtaLog cta = two_segments();
  RoleLog& c0 = cta.roles[static_cast<int>(Role::kConsumer0)];
  c0.stamps.resize(6);  // capacity 6: up to segment 0's second kBlockLanded
  const CtaTimeline t = build_timeline(cta, TimeBase{}, kT0);
  EXPECT_EQ(t.dropped, 10u);
  // Segment 1 exists through the other roles; consumer 0's events of it are missing, not zero.
  ASSERT_EQ(t.segments.size(), 2u);
  EXPECT_TRUE(std::isnan(t.segments[1].start));
  EXPECT_TRUE(std::isnan(t.segments[0].epilogue_end));
  const Summary s = summarise({t});
  EXPECT_EQ(s.dropped, 10u);
  EXPECT_EQ(s.q_wait.n, 1u);  // segment 0's only
  EXPECT_EQ(s.epilogue.n, 0u);
  EXPECT_EQ(s.gap.n, 0u);
}

TEST(BenchTimeline, SmClockTimeBaseAndCalibration) {
  std::vector<CtaLog> logs = {two_segments()};
  EXPECT_NEAR(calibrate_clock(logs, 20.0), kCyclesPerUs, 1.0);
  EXPECT_EQ(calibrate_clock(logs, 1000.0), 0.0);  // no span that long
  // A globaltimer stepping by 1 µs: the stamps' ns are floored, the clock keeps the intervals.
  for (RoleLog& log : logs[0].roles)
    for (Stamp& s : log.stamps) s.global_ns = (s.global_ns - kT0) / 1000 * 1000 + kT0;
  EXPECT_EQ(globaltimer_step(logs), 1000u);
  const CtaTimeline t = build_timeline(logs[0], TimeBase{true, kCyclesPerUs}, kT0);
  ASSERT_EQ(t.segments.size(), 2u);
  EXPECT_NEAR(t.segments[0].q_landed, 3.5, 1e-6);
  EXPECT_NEAR(t.segments[0].last_end1, 10.7, 1e-6);
}

TEST(BenchTimeline, SmClockWrapsAround) {
  CtaLog cta = two_segments();
  for (RoleLog& log : cta.roles)
    for (Stamp& s : log.stamps) s.clock -= 4000;  // the entry at 1000 cycles: later stamps wrap below 2^32
  const CtaTimeline t = build_timeline(cta, TimeBase{true, kCyclesPerUs}, kT0);
  EXPECT_NEAR(t.segments[0].start, 1.0, 1e-6);
  EXPECT_NEAR(t.exit, 35.5, 1e-6);
}

TEST(BenchTimeline, DetailPicksTheLastCtaFirstAndNoCtaTwice) {
  std::vector<CtaTimeline> ctas(10);
  for (size_t i = 0; i < ctas.size(); ++i) {
    ctas[i].entry_us = 0.0;
    ctas[i].exit = static_cast<double>(i % 4);
  }
  ctas[6].exit = 9.0;
  const std::vector<size_t> picked = detail_ctas(ctas, 4);
  ASSERT_EQ(picked.size(), 4u);
  EXPECT_EQ(picked[0], 6u);
  for (size_t a = 0; a < picked.size(); ++a)
    for (size_t b = a + 1; b < picked.size(); ++b) EXPECT_NE(picked[a], picked[b]);
  EXPECT_EQ(detail_ctas(ctas, 20).size(), 10u);
  EXPECT_TRUE(detail_ctas({}, 8).empty());
}

TEST(BenchTimeline, RawListsEveryRecordInClockOrderAcrossRoles) {
  CtaLog cta = two_segments();
  cta.roles[static_cast<int>(Role::kConsumer1)].stamps.push_back(at(12.0, Event::kPublished, 5));
  std::FILE* f = std::tmpfile();
  ASSERT_NE(f, nullptr);
  print_raw(f, cta);
  std::rewind(f);
  std::string text;
  for (int c; (c = std::fgetc(f)) != EOF;) text.push_back(static_cast<char>(c));
  std::fclose(f);
  size_t records = 0;
  for (const RoleLog& log : cta.roles) records += log.stamps.size();
  EXPECT_EQ(static_cast<size_t>(std::count(text.begin(), text.end(), '\n')), records + 2);  // + header
  // The first record is the CTA's earliest (the producer's entry at 0.5 µs: cycle 0); the published record
  // sits between consumer 0's epilogue begin (11.5 µs) and end (13.5 µs), 23000 cycles after the entry.
  EXPECT_EQ(text.find("        0  2  entry"), text.find('\n', 1) + 1);
  const size_t published = text.find("    23000  1  published      5");
  ASSERT_NE(published, std::string::npos);
  EXPECT_LT(text.find("    22000  0  epilogue-begin"), published);
  EXPECT_GT(text.find("    26000  0  epilogue-end"), published);
}

}  // namespace
}  // namespace etap::bench::timeline
