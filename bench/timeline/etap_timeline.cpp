// etap_timeline: per-CTA timestamps of the decode kernel's pipeline events (decode/kernel/timeline.cuh) on
// one problem — bf16, d 576/512, page 64, every seqlen equal. Plans with the library's planner, runs the
// shipped decode once (warm-up, then timed), the probed kernels once (warm-up, then timed and recorded),
// checks that both wrote the same bytes, and prints a summary over CTAs and a few CTAs in detail. A
// measurement tool for the benchmark, not a test: nothing is asserted. README.md beside it says what each
// event means. Run on a machine with a Hopper GPU, e.g.
//   build/bench/etap_timeline -b 264 -s 512 --h-q 64
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <etap/etap.hpp>
#include <string>
#include <vector>

#include "api/api_internal.hpp"
#include "bench/timeline/probed.hpp"
#include "bench/timeline/report.hpp"
#include "decode/launch/kernel_choice.hpp"
#include "decode/launch/launch.hpp"
#include "testing/cuda.hpp"
#include "testing/problem.hpp"

namespace {

namespace tl = etap::bench::timeline;
using etap::decoding::timeline::kRoles;
using etap::decoding::timeline::Stamp;

// Records per role and CTA by default: a 64K-token request split over 8 CTAs gives each ~130 blocks, and
// the consumers make 2 records per block.
constexpr uint32_t kDefaultCapacity = 1024;
constexpr int kDefaultDetailCtas = 8;
constexpr int kDetailSegments = 12;  // segments shown per CTA in detail
// A globaltimer that steps coarser than this gives the intervals inside a CTA from the SM clock instead.
constexpr uint64_t kFineTimerStepNs = 100;

struct Flags {
  int32_t batch = 264, seqlen = 512, h_q = 64, s_q = 1, num_sms = 0, fixed_cost = 0;
  etap::decoding::KernelChoice kernel = etap::decoding::KernelChoice::kAuto;
  uint32_t capacity = kDefaultCapacity;
  int detail = kDefaultDetailCtas;
  int raw = -1;  // --raw C: every record of CTA C (grid order), in SM cycles from its first record
  std::string timer = "auto";  // auto | global | clock
};

[[noreturn]] void usage(const char* why) {
  std::fprintf(stderr,
               "etap_timeline: %s\n"
               "usage: etap_timeline [-b BATCH] [-s SEQLEN] [--h-q H] [--s-q S] [--num-sms N]\n"
               "                     [--kernel auto|transposed|rows] [--fixed-cost F] [--capacity RECORDS]\n"
               "                     [--detail CTAS] [--timer auto|global|clock] [--raw CTA]\n",
               why);
  std::exit(2);
}

Flags parse(int argc, char** argv) {
  Flags f;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage(("missing value after " + a).c_str());
      return argv[++i];
    };
    auto number = [&]() { return static_cast<int32_t>(std::strtol(value().c_str(), nullptr, 10)); };
    if (a == "-b")
      f.batch = number();
    else if (a == "-s")
      f.seqlen = number();
    else if (a == "--h-q")
      f.h_q = number();
    else if (a == "--s-q")
      f.s_q = number();
    else if (a == "--num-sms")
      f.num_sms = number();
    else if (a == "--fixed-cost")
      f.fixed_cost = number();
    else if (a == "--capacity")
      f.capacity = static_cast<uint32_t>(number());
    else if (a == "--detail")
      f.detail = number();
    else if (a == "--raw")
      f.raw = number();
    else if (a == "--timer") {
      f.timer = value();
      if (f.timer != "auto" && f.timer != "global" && f.timer != "clock")
        usage("--timer takes auto|global|clock");
    } else if (a == "--kernel") {
      const std::string k = value();
      if (k == "auto")
        f.kernel = etap::decoding::KernelChoice::kAuto;
      else if (k == "transposed")
        f.kernel = etap::decoding::KernelChoice::kTransposed;
      else if (k == "rows")
        f.kernel = etap::decoding::KernelChoice::kRows;
      else
        usage("--kernel takes auto|transposed|rows");
    } else {
      usage(("unknown argument " + a).c_str());
    }
  }
  if (f.batch < 1 || f.seqlen < 1 || f.h_q < 1 || f.s_q < 1 || f.capacity < 1 || f.detail < 0)
    usage("sizes must be positive");
  return f;
}

void require_ok(const etap::Status& status, const char* what) {
  if (status.ok()) return;
  std::fprintf(stderr, "%s failed: %s\n", what, status.message().c_str());
  std::exit(1);
}

void require_cuda(cudaError_t e, const char* what) {
  if (e == cudaSuccess) return;
  std::fprintf(stderr, "%s failed: %s\n", what, cudaGetErrorString(e));
  std::exit(1);
}

}  // namespace

int main(int argc, char** argv) {
  const Flags flags = parse(argc, argv);
  require_ok(etap::check_device(0), "etap::check_device (a compute-capability-9.0 GPU)");

  etap::testing::ProblemSpec spec;
  spec.batch = flags.batch;
  spec.s_q = flags.s_q;
  spec.h_q = flags.h_q;
  spec.seqlen_fixed = flags.seqlen;
  spec.page_size = etap::decoding::kBlockTokens;
  const etap::testing::HostData host = etap::testing::make_problem(spec);
  etap::Options options{};
  options.num_sms = flags.num_sms;
  etap::testing::DeviceData device;
  etap::testing::upload(host, etap::LseBase::kNatural, options, device);
  const etap::DecodeArgs& args = device.args;
  etap::testing::Stream stream_owner;
  const cudaStream_t stream = stream_owner.get();

  // The library's plan, as the benchmark makes it (--fixed-cost: its F instead of the kernel rule's).
  etap::api::BufferSizes sizes{};
  require_ok(etap::api::buffer_sizes(args.problem, options, &sizes), "buffer_sizes");
  if (flags.fixed_cost > 0) sizes.params.fixed_cost = flags.fixed_cost;
  require_ok(etap::api::launch_plan_checked(args, sizes, device.d_plan, device.plan_size, stream), "plan");
  const etap::decoding::PlanParams params = sizes.params;
  const etap::decoding::KernelParams kp = etap::decoding::make_params(
      args, static_cast<const int32_t*>(device.d_plan), device.d_workspace, params.num_parts);
  const bool rows = etap::decoding::runs_rows_kernel(args.problem, flags.kernel);

  // The store: [tiles][parts][role][capacity] records and [tiles][parts][role] counts.
  const int64_t ctas = int64_t{params.num_parts} * kp.tiling.num_tiles;
  etap::testing::DeviceBuffer stamps(static_cast<size_t>(ctas * kRoles * flags.capacity) * sizeof(Stamp));
  etap::testing::DeviceBuffer counts(static_cast<size_t>(ctas * kRoles) * sizeof(uint32_t));
  const etap::decoding::timeline::Store store{stamps.get<Stamp>(), counts.get<uint32_t>(), flags.capacity};
  auto clear_store = [&] {
    require_cuda(cudaMemsetAsync(stamps.get(), 0, stamps.bytes(), stream), "clearing the records");
    require_cuda(cudaMemsetAsync(counts.get(), 0, counts.bytes(), stream), "clearing the counts");
  };
  tl::ProbedKernel launched;
  auto probed = [&] {
    return rows ? tl::launch_probed_rows(args, kp, params.num_parts, store, stream, &launched)
                : tl::launch_probed_transposed(args, kp, params.num_parts, store, stream, &launched);
  };
  auto shipped = [&] {
    return etap::decoding::launch_decode(args, static_cast<const int32_t*>(device.d_plan), params,
                                         device.d_workspace, stream, flags.kernel);
  };
  const size_t out_bytes = static_cast<size_t>(host.out_tokens()) * args.problem.h_q * args.problem.d_v * 2;
  auto download_out = [&] {
    std::vector<uint8_t> out(out_bytes);
    require_cuda(cudaMemcpyAsync(out.data(), device.d_out, out_bytes, cudaMemcpyDeviceToHost, stream),
                 "copying out");
    require_cuda(cudaStreamSynchronize(stream), "the decode");
    return out;
  };
  auto timed = [&](auto&& launch, const char* what) {
    etap::testing::Event start, stop;
    require_cuda(cudaEventRecord(start.get(), stream), "cudaEventRecord");
    require_cuda(launch(), what);
    require_cuda(cudaEventRecord(stop.get(), stream), "cudaEventRecord");
    require_cuda(cudaEventSynchronize(stop.get()), what);
    return etap::testing::elapsed_us(start, stop);
  };

  clear_store();
  const cudaError_t probe_check = probed();  // the warm-up, and whether the tool has this kernel
  if (probe_check == cudaErrorNotSupported) {
    std::fprintf(stderr,
                 "etap_timeline has no probed kernel for this problem: tile rows %d (%s kernel); it builds "
                 "the transposed kernel at N = 16 and 64 and the rows-on-M kernel (bf16, d 576/512)\n",
                 kp.tiling.tile_rows(), rows ? "rows-on-M" : "transposed");
    return 1;
  }
  require_cuda(probe_check, "the probed decode (warm-up)");
  require_cuda(shipped(), "the shipped decode (warm-up)");
  require_cuda(cudaStreamSynchronize(stream), "the warm-up");
  const double shipped_us = timed(shipped, "the shipped decode");
  const std::vector<uint8_t> shipped_out = download_out();
  clear_store();
  const double probed_us = timed(probed, "the probed decode");
  const std::vector<uint8_t> probed_out = download_out();

  // The records, per CTA in grid order (blockIdx.y major).
  std::vector<Stamp> all_stamps(static_cast<size_t>(ctas * kRoles * flags.capacity));
  std::vector<uint32_t> all_counts(static_cast<size_t>(ctas * kRoles));
  require_cuda(cudaMemcpy(all_stamps.data(), stamps.get(), stamps.bytes(), cudaMemcpyDeviceToHost),
               "records");
  require_cuda(cudaMemcpy(all_counts.data(), counts.get(), counts.bytes(), cudaMemcpyDeviceToHost), "counts");
  std::vector<tl::CtaLog> logs(static_cast<size_t>(ctas));
  for (int64_t c = 0; c < ctas; ++c) {
    logs[c].x = static_cast<int32_t>(c % params.num_parts);
    logs[c].y = static_cast<int32_t>(c / params.num_parts);
    for (uint32_t r = 0; r < kRoles; ++r) {
      const int64_t stream_id = etap::decoding::timeline::stream_index(c, r);
      tl::RoleLog& log = logs[c].roles[r];
      log.made = all_counts[stream_id];
      const uint32_t kept = std::min(log.made, flags.capacity);
      const Stamp* first = all_stamps.data() + stream_id * flags.capacity;
      log.stamps.assign(first, first + kept);
    }
  }

  uint64_t grid_entry = 0;
  for (const tl::CtaLog& log : logs)
    if (const Stamp* e = tl::cta_entry(log); e && (grid_entry == 0 || e->global_ns < grid_entry))
      grid_entry = e->global_ns;
  const uint64_t step = tl::globaltimer_step(logs);
  int clock_khz = 0;
  require_cuda(cudaDeviceGetAttribute(&clock_khz, cudaDevAttrClockRate, 0), "cudaDevAttrClockRate");
  double cycles_per_us = tl::calibrate_clock(logs);
  const bool calibrated = cycles_per_us > 0;
  if (!calibrated) cycles_per_us = clock_khz * 1e-3;
  const bool use_clock = flags.timer == "clock" || (flags.timer == "auto" && step > kFineTimerStepNs);
  const tl::TimeBase base{use_clock, cycles_per_us};
  std::vector<tl::CtaTimeline> timelines;
  timelines.reserve(logs.size());
  for (const tl::CtaLog& log : logs) timelines.push_back(tl::build_timeline(log, base, grid_entry));

  const etap::DecodeProblem& pb = args.problem;
  std::printf(
      "etap_timeline: b=%d s=%d h_q=%d s_q=%d page 64 bf16 d 576/512 | %s kernel, %s, N=%d | grid %d x %d "
      "(parts x tiles), F=%d\n",
      pb.batch, flags.seqlen, pb.h_q, pb.s_q, rows ? "rows-on-M" : "transposed",
      launched.tiled ? "tiled" : "untiled", launched.n, params.num_parts, kp.tiling.num_tiles,
      params.fixed_cost);
  std::printf("decode + combine, one call each (CUDA events): shipped %.1f us, probed %.1f us; out %s\n",
              shipped_us, probed_us,
              shipped_out == probed_out ? "identical" : "DIFFERS (probed build broken?)");
  std::printf("timer: globaltimer step <= %llu ns; SM clock %.0f MHz (%s); intervals in a CTA from the %s\n",
              static_cast<unsigned long long>(step), cycles_per_us,
              calibrated ? "calibrated" : "device attribute", use_clock ? "SM clock" : "globaltimer");
  std::printf("\nsummary over %lld CTAs:\n", static_cast<long long>(ctas));
  tl::print_summary(stdout, tl::summarise(timelines));
  const std::vector<size_t> picked = tl::detail_ctas(timelines, static_cast<size_t>(flags.detail));
  if (!picked.empty()) std::printf("\nCTAs in detail (us from the CTA's entry; the first one ends last):\n");
  for (size_t i : picked) tl::print_cta(stdout, timelines[i], kDetailSegments);
  if (flags.raw >= static_cast<int>(logs.size())) {
    std::fprintf(stderr, "etap_timeline: --raw %d: the grid has %zu CTAs\n", flags.raw, logs.size());
    return 2;
  }
  if (flags.raw >= 0) tl::print_raw(stdout, logs[flags.raw]);
  return 0;
}
