// `etap run`: one decode problem on the GPU — error against the CPU reference, then timing. Without a
// compute-capability-9.0 GPU it runs the CPU reference on a small problem instead.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

#include "commands.hpp"
#include "gpu.hpp"
#include "testing/problem.hpp"

namespace etap::cli {
namespace {

using Clock = std::chrono::steady_clock;

constexpr double kDeepSeekV3Scale = 0.1352337788608801;  // 1/sqrt(192) · mscale²
constexpr int32_t kDqk = 576, kDv = 512;

// The small problem of the CPU-only fallback.
constexpr int32_t kCpuBatch = 2, kCpuSeqlen = 256, kCpuHeads = 16;

struct RunFlags {
  int32_t batch = 16;
  int32_t seqlen = 4096;
  int32_t h_q = 16;
  int32_t s_q = 1;
  std::string dtype = "bf16";
  bool causal = false;
  double scale = kDeepSeekV3Scale;
  std::string lse_base = "e";
  int32_t varlen_mean = 0;
  uint64_t seed = 1;
  int iters = 100;
  int warmup = 10;
  int num_sms = 0;
  bool no_check = false;
  int threads = 0;
};

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

int reference_threads(int requested) {
  return requested > 0 ? requested : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

testing::ProblemSpec make_spec(const RunFlags& f, int32_t batch, int32_t seqlen, int32_t h_q) {
  testing::ProblemSpec spec;
  spec.batch = batch;
  spec.s_q = f.s_q;
  spec.h_q = h_q;
  spec.dtype = f.dtype == "fp16" ? DType::kFP16 : DType::kBF16;
  spec.softmax_scale = f.scale;
  spec.causal = f.causal;
  spec.seed = f.seed;
  if (f.varlen_mean > 0)
    spec.seqlens = testing::varlen_seqlens(batch, f.varlen_mean, f.seed);
  else
    spec.seqlen_fixed = seqlen;
  return spec;
}

LseBase lse_base(const RunFlags& f) {
  return f.lse_base == "2" ? LseBase::kBase2 : LseBase::kNatural;
}

int64_t total_tokens(const testing::HostData& host) {
  return std::accumulate(host.seqlens.begin(), host.seqlens.end(), int64_t{0});
}

void print_problem(const testing::HostData& host, const RunFlags& f) {
  const DecodeProblem& p = host.problem;
  const int64_t tokens = total_tokens(host);
  const double mean = p.batch > 0 ? static_cast<double>(tokens) / p.batch : 0.0;
  std::printf("problem: b=%d s_q=%d h_q=%d (R=%d) s_k=", p.batch, p.s_q, p.h_q, p.rows());
  if (f.varlen_mean > 0)
    std::printf("varlen mean %.0f (requested %d)", mean, f.varlen_mean);
  else
    std::printf("%d", p.batch > 0 ? host.seqlens[0] : 0);
  std::printf(" d=%d/%d page=%d %s%s scale=%.6g lse=%s\n", p.d_qk, p.d_v, p.page_size, to_string(p.q_dtype),
              host.causal ? " causal" : "", host.softmax_scale, f.lse_base == "2" ? "log2" : "ln");
}

// DESIGN.md §5: FLOPs = 2·b·s_q·h_q·s̄_k·(576 + 512).
double decode_flops(const testing::HostData& host) {
  const DecodeProblem& p = host.problem;
  return 2.0 * p.s_q * p.h_q * static_cast<double>(total_tokens(host)) * (p.d_qk + p.d_v);
}

// DESIGN.md §5: bytes = b·s̄_k·576·2 + q + out.
double decode_bytes(const testing::HostData& host) {
  const DecodeProblem& p = host.problem;
  const double elem = static_cast<double>(dtype_bytes(p.q_dtype));
  const double rows = static_cast<double>(p.batch) * p.s_q * p.h_q;
  return static_cast<double>(total_tokens(host)) * p.d_qk * elem + rows * (p.d_qk + p.d_v) * elem;
}

int run_cpu_fallback(const RunFlags& f, const std::string& reason) {
  std::printf(
      "etap: no compute-capability-9.0 GPU found (%s); running the CPU reference on a small problem "
      "instead\n",
      reason.c_str());
  RunFlags small = f;
  small.varlen_mean = 0;
  const testing::HostData host = testing::make_problem(make_spec(small, kCpuBatch, kCpuSeqlen, kCpuHeads));
  print_problem(host, small);

  const int threads = reference_threads(f.threads);
  std::vector<double> out, lse;
  const Clock::time_point start = Clock::now();
  reference::decode(host.view(), out, lse, lse_base(f), threads);
  const double seconds = seconds_since(start);

  double out_sum = 0, out_abs = 0, lse_sum = 0;
  for (double x : out) {
    out_sum += x;
    out_abs += std::abs(x);
  }
  for (double x : lse)
    if (std::isfinite(x)) lse_sum += x;
  std::printf("CPU reference (fp64, %d threads): %.2f ms, %.2f GFLOP/s\n", threads, 1e3 * seconds,
              decode_flops(host) / seconds / 1e9);
  std::printf("checksum: sum(out)=%.9e sum|out|=%.9e sum(lse)=%.9e\n", out_sum, out_abs, lse_sum);
  return 0;
}

// Runs plan + decode once on `stream` and waits; throws on failure.
void plan_and_decode(const testing::DeviceData& d, const Options& options, cudaStream_t stream) {
  const Status planned = plan(d.args, d.d_plan, d.plan_size, stream, options);
  if (!planned.ok()) throw std::runtime_error("etap::plan failed: " + planned.message());
  const Status decoded =
      decode(d.args, d.d_plan, d.plan_size, d.d_workspace, d.workspace_size, stream, options);
  if (!decoded.ok()) throw std::runtime_error("etap::decode failed: " + decoded.message());
  cuda_check(cudaStreamSynchronize(stream), "running plan + decode");
}

int run_gpu(const RunFlags& f, const GpuChoice& gpu) {
  cuda_check(cudaSetDevice(gpu.device), "cudaSetDevice");
  std::printf("etap run on %s\n", describe_gpu(gpu.device, gpu.prop).c_str());

  Clock::time_point start = Clock::now();
  std::printf("building inputs ...");
  std::fflush(stdout);
  const testing::HostData host = testing::make_problem(make_spec(f, f.batch, f.seqlen, f.h_q));
  std::printf(" %.1f s (KV cache %.1f MB)\n", seconds_since(start),
              static_cast<double>(host.kv_cache.size()) * sizeof(uint16_t) / 1e6);
  print_problem(host, f);

  Options options;
  options.num_sms = f.num_sms;
  testing::DeviceData device;
  testing::upload(host, lse_base(f), options, device);
  cudaStream_t stream = nullptr;
  // A blocking stream: it also waits for upload()'s copies and memsets on the legacy default stream.
  cuda_check(cudaStreamCreate(&stream), "cudaStreamCreate");
  std::unique_ptr<CUstream_st, decltype(&cudaStreamDestroy)> stream_owner(stream, cudaStreamDestroy);

  plan_and_decode(device, options, stream);

  bool pass = true;
  if (f.no_check) {
    std::printf("error vs reference: not checked (--no-check)\n");
  } else {
    const DecodeProblem& p = host.problem;
    std::vector<uint16_t> out(static_cast<std::size_t>(p.batch) * p.s_q * p.h_q * p.d_v);
    std::vector<float> lse(static_cast<std::size_t>(p.batch) * p.h_q * p.s_q);
    cuda_check(cudaMemcpy(out.data(), device.d_out, out.size() * sizeof(uint16_t), cudaMemcpyDeviceToHost),
               "copying out back");
    cuda_check(cudaMemcpy(lse.data(), device.d_lse, lse.size() * sizeof(float), cudaMemcpyDeviceToHost),
               "copying lse back");
    const int threads = reference_threads(f.threads);
    std::printf("computing the CPU reference (fp64, %d threads) ...", threads);
    std::fflush(stdout);
    start = Clock::now();
    std::vector<double> ref_out, ref_lse, ref_weighted_abs;
    reference::decode(host.view(), ref_out, ref_lse, lse_base(f), threads, &ref_weighted_abs);
    std::printf(" %.1f s\n", seconds_since(start));
    const testing::Comparison c = testing::compare(out, p.out_dtype, lse, ref_out, ref_lse, ref_weighted_abs);
    std::printf("error vs reference: %s\n", c.describe().c_str());
    pass = c.pass;
  }

  GpuTimer timer(gpu.prop, stream);
  auto launch_decode = [&] {
    const Status s = decode(device.args, device.d_plan, device.plan_size, device.d_workspace,
                            device.workspace_size, stream, options);
    if (!s.ok()) throw std::runtime_error("etap::decode failed: " + s.message());
  };
  auto launch_plan = [&] {
    const Status s = plan(device.args, device.d_plan, device.plan_size, stream, options);
    if (!s.ok()) throw std::runtime_error("etap::plan failed: " + s.message());
  };
  std::printf("timing (L2 flushed before each call, median of %d after %d warm-up) ...\n", f.iters, f.warmup);
  std::fflush(stdout);
  const double plan_us = timer.median_us(f.warmup, f.iters, launch_plan);
  const double decode_us = timer.median_us(f.warmup, f.iters, launch_decode);

  const double bytes = decode_bytes(host), flops = decode_flops(host);
  std::printf("decode: %9.2f µs  %8.1f GB/s  %7.2f TFLOP/s  (%.1f MB, %.3g GFLOP)\n", decode_us,
              bytes / (decode_us * 1e3), flops / (decode_us * 1e6), bytes / 1e6, flops / 1e9);
  std::printf("plan:   %9.2f µs  (separate call, not included above)\n", plan_us);
  if (!pass) std::printf("etap run: the output does not match the reference (see the error line)\n");
  return pass ? 0 : 1;
}

}  // namespace

void add_run_command(CLI::App& app, int& exit_code) {
  auto flags = std::make_shared<RunFlags>();
  CLI::App* run = app.add_subcommand(
      "run",
      "Decode one problem on the GPU (default: the paper's b=16 h_q=16 s_k=4096 bf16), check it against "
      "the CPU reference and time it");
  run->add_option("-b,--batch", flags->batch, "Requests")
      ->capture_default_str()
      ->check(CLI::Range(0, 1 << 20));
  run->add_option("-s,--seqlen", flags->seqlen, "Tokens in the KV cache per request")
      ->capture_default_str()
      ->check(CLI::Range(0, 1 << 24));
  run->add_option("--heads,--h-q", flags->h_q, "Query heads")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
  run->add_option("--s-q", flags->s_q, "Query tokens per request (MTP when > 1)")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
  run->add_option("--dtype", flags->dtype, "q, KV cache and out dtype")
      ->capture_default_str()
      ->check(CLI::IsMember({"bf16", "fp16"}));
  run->add_flag("--causal", flags->causal, "Causal MTP mask (bottom-right aligned)");
  run->add_option("--scale", flags->scale, "Softmax scale (default: DeepSeek-V3's)")->capture_default_str();
  run->add_option("--lse-base", flags->lse_base, "Base of the returned lse: e or 2")
      ->capture_default_str()
      ->check(CLI::IsMember({"e", "2"}));
  run->add_option("--varlen", flags->varlen_mean,
                  "Variable lengths drawn from N(mean, mean/2) with this mean (replaces --seqlen)")
      ->check(CLI::Range(1, 1 << 24));
  run->add_option("--seed", flags->seed, "Random seed of the inputs")->capture_default_str();
  run->add_option("--iters", flags->iters, "Timed calls")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000000));
  run->add_option("--warmup", flags->warmup, "Untimed calls before timing")
      ->capture_default_str()
      ->check(CLI::Range(0, 1000000));
  run->add_option("--num-sms", flags->num_sms, "SMs the schedule spreads over (0: all)")
      ->capture_default_str()
      ->check(CLI::Range(0, 1 << 16));
  run->add_option("--threads", flags->threads, "CPU reference threads (0: all cores)")
      ->check(CLI::Range(0, 4096));
  run->add_flag("--no-check", flags->no_check,
                "Skip the CPU reference (long contexts take a while on the CPU)");

  run->callback([flags, &exit_code] {
    const GpuChoice gpu = find_sm90_gpu();
    exit_code = gpu.found() ? run_gpu(*flags, gpu) : run_cpu_fallback(*flags, gpu.reason);
  });
}

}  // namespace etap::cli
