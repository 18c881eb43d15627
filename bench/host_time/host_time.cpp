// etap_host_time: host CPU time per call of etap::plan and etap::decode and of their parts, on a tiny problem
// (b = 1, 256 tokens, h_q = 16), the way an eager engine calls them: Options{} (the SM count of the current
// device), one stream, no synchronisation between calls. Each case is timed with std::chrono over rounds of
// kCallsPerRound calls; the stream is synchronised between rounds (outside the timed region) so that the
// launch queue never fills and the time is the host's alone. Prints the median and the fastest round, µs per
// call. Then the GPU time of one decode step, plan + decode issued back to back (the kernel boundaries that
// programmatic dependent launch overlaps), at b=16 1K and b=1 8K: CUDA events around kStepsPerSample steps,
// eager and replayed from a CUDA graph, L2 not flushed (the same inputs every step). It uses only what
// main has too, so a copy built there gives the before. A measurement tool, not a test: nothing is asserted.
// Run on a machine with a Hopper GPU:
//   ./build/bench/etap_host_time [rounds]
#include <cuda_runtime_api.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <etap/etap.hpp>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "api/api_internal.hpp"
#include "decode/launch/launch.hpp"
#include "hopper/tensor_map.hpp"
#include "testing/cuda.hpp"
#include "testing/problem.hpp"

namespace {

using Clock = std::chrono::steady_clock;

// A call launches at most 3 kernels (plan, decode, combine): 300 queued launches per round stay well inside
// the driver's launch queue, so a round never waits for the GPU.
constexpr int kCallsPerRound = 100;
constexpr int kWarmupCalls = 200;
constexpr int kDefaultRounds = 50;

constexpr int kStepsPerSample = 20;

struct Timing {
  double median_us, min_us;
};

Timing summarise(std::vector<double> samples) {
  std::sort(samples.begin(), samples.end());
  return {samples[samples.size() / 2], samples.front()};
}

Timing time_calls(const std::function<void()>& call, cudaStream_t stream, int rounds) {
  for (int i = 0; i < kWarmupCalls; ++i) call();
  ETAP_CUDA_CHECK(cudaStreamSynchronize(stream));
  std::vector<double> per_call(rounds);
  for (double& us : per_call) {
    const auto start = Clock::now();
    for (int i = 0; i < kCallsPerRound; ++i) call();
    const auto stop = Clock::now();
    us = std::chrono::duration<double, std::micro>(stop - start).count() / kCallsPerRound;
    ETAP_CUDA_CHECK(cudaStreamSynchronize(stream));
  }
  return summarise(per_call);
}

void require_ok(const etap::Status& status, const char* what) {
  if (status.ok()) return;
  std::fprintf(stderr, "%s failed: %s\n", what, status.message().c_str());
  std::exit(1);
}

// GPU µs per plan + decode step, kStepsPerSample steps per sample, eager or replayed from a graph.
Timing time_steps(const etap::testing::DeviceData& d, const etap::Options& options, cudaStream_t stream,
                  bool graph, int samples) {
  const auto issue = [&] {
    for (int i = 0; i < kStepsPerSample; ++i) {
      require_ok(etap::plan(d.args, d.d_plan, d.plan_size, stream, options), "etap::plan");
      require_ok(
          etap::decode(d.args, d.d_plan, d.plan_size, d.d_workspace, d.workspace_size, stream, options),
          "etap::decode");
    }
  };
  cudaGraph_t captured = nullptr;
  cudaGraphExec_t exec = nullptr;
  if (graph) {
    ETAP_CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal));
    issue();
    ETAP_CUDA_CHECK(cudaStreamEndCapture(stream, &captured));
    ETAP_CUDA_CHECK(cudaGraphInstantiate(&exec, captured, 0));
  }
  const auto run = [&] {
    if (graph)
      ETAP_CUDA_CHECK(cudaGraphLaunch(exec, stream));
    else
      issue();
  };
  run();  // warm-up
  etap::testing::Event start, stop;
  std::vector<double> per_step(samples);
  for (double& us : per_step) {
    ETAP_CUDA_CHECK(cudaEventRecord(start.get(), stream));
    run();
    ETAP_CUDA_CHECK(cudaEventRecord(stop.get(), stream));
    ETAP_CUDA_CHECK(cudaEventSynchronize(stop.get()));
    us = etap::testing::elapsed_us(start, stop) / kStepsPerSample;
  }
  if (graph) {
    ETAP_CUDA_CHECK(cudaGraphExecDestroy(exec));
    ETAP_CUDA_CHECK(cudaGraphDestroy(captured));
  }
  return summarise(per_step);
}

}  // namespace

int main(int argc, char** argv) {
  const int rounds = argc > 1 ? std::max(1, std::atoi(argv[1])) : kDefaultRounds;
  if (const etap::Status device = etap::check_device(0); !device.ok()) {
    std::fprintf(stderr, "etap_host_time needs a compute-capability-9.0 GPU: %s\n", device.message().c_str());
    return 1;
  }
  etap::testing::ProblemSpec spec;
  spec.batch = 1;
  spec.seqlen_fixed = 256;
  const etap::testing::HostData host = etap::testing::make_problem(spec);
  const etap::Options options{};  // num_sms = 0: the current device's SM count, as an engine would pass
  etap::testing::DeviceData device;
  etap::testing::upload(host, etap::LseBase::kNatural, options, device);
  const etap::DecodeArgs& args = device.args;
  etap::testing::Stream stream_owner;
  const cudaStream_t stream = stream_owner.get();

  require_ok(etap::plan(args, device.d_plan, device.plan_size, stream, options), "etap::plan");
  require_ok(etap::decode(args, device.d_plan, device.plan_size, device.d_workspace, device.workspace_size,
                          stream, options),
             "etap::decode");
  ETAP_CUDA_CHECK(cudaStreamSynchronize(stream));
  etap::api::BufferSizes sizes{};
  require_ok(etap::api::buffer_sizes(args.problem, options, &sizes), "buffer_sizes");

  const auto decode = [&] {
    etap::decode(args, device.d_plan, device.plan_size, device.d_workspace, device.workspace_size, stream,
                 options);
  };
  const auto plan = [&] { etap::plan(args, device.d_plan, device.plan_size, stream, options); };
  etap::hopper::TensorMapSpec q_map_spec{};  // the decode kernel's q map for this problem (kernel_launch.cuh)
  const etap::DecodeProblem& pb = args.problem;
  constexpr int kElementBytes = 2;  // bf16
  constexpr uint32_t kBoxCols = 64;
  q_map_spec.base = args.q;
  q_map_spec.rank = 4;
  q_map_spec.dims[0] = static_cast<uint64_t>(pb.d_qk);
  q_map_spec.dims[1] = static_cast<uint64_t>(pb.h_q);
  q_map_spec.dims[2] = static_cast<uint64_t>(pb.s_q);
  q_map_spec.dims[3] = static_cast<uint64_t>(pb.batch);
  q_map_spec.strides_bytes[0] = static_cast<uint64_t>(args.q_head_stride * kElementBytes);
  q_map_spec.strides_bytes[1] = static_cast<uint64_t>(args.q_seq_stride * kElementBytes);
  q_map_spec.strides_bytes[2] = static_cast<uint64_t>(args.q_batch_stride * kElementBytes);
  q_map_spec.box[0] = kBoxCols;
  q_map_spec.box[1] = static_cast<uint32_t>(pb.h_q);
  q_map_spec.box[2] = static_cast<uint32_t>(pb.s_q);
  q_map_spec.box[3] = 1;
  CUtensorMap map;

  const std::vector<std::pair<std::string, std::function<void()>>> cases = {
      {"etap::decode (2 launches)", decode},
      {"etap::plan (1 launch)", plan},
      {"plan + decode (one step)",
       [&] {
         plan();
         decode();
       }},
      {"  validate(args)", [&] { etap::validate(args); }},
      {"  buffer sizes (SM count)",
       [&] {
         etap::api::BufferSizes s{};
         etap::api::buffer_sizes(args.problem, options, &s);
       }},
      {"  check_current_device", [] { etap::api::check_current_device(); }},
      {"  one tensor-map encode", [&] { etap::hopper::encode_tensor_map(q_map_spec, &map, nullptr); }},
      {"  launch_decode (maps + 2 launches)",
       [&] {
         etap::decoding::launch_decode(args, static_cast<const int32_t*>(device.d_plan), sizes.params,
                                       device.d_workspace, stream);
       }},
      {"  launch_plan (1 launch)",
       [&] {
         etap::decoding::launch_plan(args, static_cast<int32_t*>(device.d_plan), sizes.params, stream);
       }},
  };
  std::printf("host time per call, b=1 s_k=256 h_q=16, %d rounds of %d calls (µs)\n", rounds, kCallsPerRound);
  std::printf("%-38s %9s %9s\n", "call", "median", "fastest");
  for (const auto& [name, call] : cases) {
    const Timing t = time_calls(call, stream, rounds);
    std::printf("%-38s %9.2f %9.2f\n", name.c_str(), t.median_us, t.min_us);
  }
  ETAP_CUDA_CHECK(cudaStreamSynchronize(stream));

  std::printf("\nGPU time per step, plan + decode back to back, %d steps per sample, %d samples (µs)\n",
              kStepsPerSample, rounds);
  std::printf("%-38s %9s %9s\n", "step", "median", "fastest");
  for (const auto& [batch, seqlen] : {std::pair{16, 1024}, std::pair{1, 8192}}) {
    etap::testing::ProblemSpec step_spec;
    step_spec.batch = batch;
    step_spec.seqlen_fixed = seqlen;
    etap::testing::DeviceData step_device;
    etap::testing::upload(etap::testing::make_problem(step_spec), etap::LseBase::kNatural, options,
                          step_device);
    for (const bool graph : {false, true}) {
      const Timing t = time_steps(step_device, options, stream, graph, rounds);
      const std::string name =
          "b=" + std::to_string(batch) + " s_k=" + std::to_string(seqlen) + (graph ? " graph" : " eager");
      std::printf("%-38s %9.2f %9.2f\n", name.c_str(), t.median_us, t.min_us);
    }
  }
  return 0;
}
