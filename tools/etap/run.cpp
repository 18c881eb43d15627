// `etap run`: one decode problem on the GPU — error against the CPU reference, then timing. Without a
// compute-capability-9.0 GPU (or with --cpu) it runs the CPU reference on the same problem instead.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <numeric>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "api/api_internal.hpp"
#include "commands.hpp"
#include "flags.hpp"
#include "gpu.hpp"
#include "testing/cuda.hpp"
#include "testing/problem.hpp"
#include "testing/stats.hpp"
#include "testing/timing.hpp"

namespace etap::testing {
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Comparison, pass, max_abs, rel_fro, rmse, cos_diff, lse_max_rel,
                                   worst_ratio, nonfinite, lse_mismatch_inf)
}  // namespace etap::testing

namespace etap::cli {
namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

constexpr double kDeepSeekV3Scale = 0.1352337788608801;  // 1/sqrt(192) · mscale²

struct RunFlags {
  int32_t batch = 16;
  int32_t seqlen = 4096;
  int32_t h_q = 16;
  int32_t s_q = 1;
  int32_t h_kv = testing::ProblemSpec{}.h_kv;
  int32_t page_size = testing::ProblemSpec{}.page_size;
  std::string head_dims = kDefaultHeadDims;
  std::string dtype = "bf16";
  std::string kv_format = kDefaultKvFormat;
  bool causal = false;
  double scale = kDeepSeekV3Scale;
  std::string lse_base = "e";
  int32_t varlen_mean = 0;
  std::vector<int32_t> q_lens;  // --q-lens
  int32_t varlen_q_max = 0;     // --varlen-q
  uint64_t seed = 1;
  int32_t iters = 100;
  int32_t warmup = 10;
  int32_t num_sms = 0;
  bool no_check = false;
  int32_t threads = 0;
  bool cpu = false;
  bool require_gpu = false;
  std::string json_path;
};

// The outcome of a run, printed as it goes and written as JSON with --json.
struct RunReport {
  json doc;
  bool pass = true;
};

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

int reference_threads(int requested) {
  return requested > 0 ? requested : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

LseBase lse_base(const RunFlags& f) {
  return f.lse_base == "2" ? LseBase::kBase2 : LseBase::kNatural;
}

testing::ProblemSpec make_spec(const RunFlags& f) {
  testing::ProblemSpec spec;
  spec.batch = f.batch;
  spec.s_q = f.s_q;
  spec.h_q = f.h_q;
  spec.h_kv = f.h_kv;
  spec.page_size = f.page_size;
  const HeadDims dims = parse_head_dims(f.head_dims).value();  // the flag's validator accepted it
  spec.d_qk = dims.d_qk;
  spec.d_v = dims.d_v;
  spec.dtype = f.dtype == "fp16" ? DType::kFP16 : DType::kBF16;
  spec.kv_format = parse_kv_format(f.kv_format).value();  // the flag's validator accepted it
  spec.softmax_scale = f.scale;
  spec.causal = f.causal;
  spec.seed = f.seed;
  if (f.varlen_mean > 0)
    spec.seqlens = testing::varlen_seqlens(f.batch, f.varlen_mean, f.seed);
  else
    spec.seqlen_fixed = f.seqlen;
  // Variable query lengths: s_q is max_seqlen_q, at least the longest request's.
  if (!f.q_lens.empty() || f.varlen_q_max > 0) {
    spec.varlen_q = true;
    spec.q_lens = !f.q_lens.empty() ? f.q_lens : testing::random_q_lens(f.batch, f.varlen_q_max, f.seed);
    const int32_t longest = *std::max_element(spec.q_lens.begin(), spec.q_lens.end());
    spec.s_q = std::max({f.s_q, f.varlen_q_max, longest, 1});
  }
  return spec;
}

// Query tokens of a request, and all of them (varlen: the packed ones some request owns).
int32_t query_tokens(const testing::HostData& host, int32_t b) {
  return host.problem.varlen_q ? host.cu_seqlens_q[b + 1] - host.cu_seqlens_q[b] : host.problem.s_q;
}

// etap::validate's verdict on the problem the flags describe, before any input is built. validate() reads
// only the alignment of the addresses, so stand-ins for the device buffers do.
Status validate_flags(const testing::ProblemSpec& spec, const RunFlags& f) {
  const DecodeProblem problem = testing::problem_shape(spec);
  auto stand_in = [](std::uintptr_t offset) {
    return reinterpret_cast<void*>(std::uintptr_t{1} << 20 | offset);
  };
  DecodeArgs args = make_dense_args(
      problem, stand_in(0), stand_in(0x1000), static_cast<int32_t*>(stand_in(0x2000)),
      static_cast<int32_t*>(stand_in(0x3000)), stand_in(0x4000), static_cast<float*>(stand_in(0x5000)),
      static_cast<float>(f.scale), f.causal, lse_base(f));
  if (problem.varlen_q) {
    const int32_t total_q =
        std::max(1, std::accumulate(spec.q_lens.begin(), spec.q_lens.end(), 0) + spec.q_pad_tokens);
    args = make_varlen_args(problem, total_q, static_cast<int32_t*>(stand_in(0x7000)), args.q, args.kv_cache,
                            args.block_table, args.seqlens, args.out, args.lse, args.softmax_scale,
                            args.causal, args.lse_base);
  }
  DecodeArgs fp8_args = args;
  if (problem.kv_format == KvFormat::kFp8PerTensor)
    fp8_args.descale_k = static_cast<float*>(stand_in(0x6000));
  return validate(fp8_args);
}

// An FP8 problem the library refuses only for a limit of its FP8 kernels (V3.2 with fp16 queries, head dims
// other than 576/512): the same problem over a dense cache passes. The CPU reference runs it; a GPU run
// reports the library's refusal.
bool refused_only_for_the_fp8_kernel(const testing::ProblemSpec& spec, const RunFlags& f,
                                     const Status& status) {
  if (spec.kv_format == KvFormat::kDense || status.code() != StatusCode::kUnsupported) return false;
  testing::ProblemSpec dense = spec;
  dense.kv_format = KvFormat::kDense;
  return validate_flags(dense, f).ok();
}

int64_t total_tokens(const testing::HostData& host) {
  return std::accumulate(host.seqlens.begin(), host.seqlens.end(), int64_t{0});
}

json describe_problem(const testing::HostData& host, const RunFlags& f) {
  const DecodeProblem& p = host.problem;
  std::vector<int32_t> q_lens;
  if (p.varlen_q)
    for (int32_t b = 0; b < p.batch; ++b) q_lens.push_back(query_tokens(host, b));
  const int64_t tokens = total_tokens(host);
  const double mean = p.batch > 0 ? static_cast<double>(tokens) / p.batch : 0.0;
  std::printf("problem: b=%d s_q=%d h_q=%d", p.batch, p.s_q, p.h_q);
  if (p.h_kv != 1) std::printf(" h_kv=%d", p.h_kv);
  if (p.varlen_q) {  // s_q is max_seqlen_q
    std::printf(" q_lens=[");
    for (int32_t b = 0; b < p.batch && b < 16; ++b) std::printf(b ? " %d" : "%d", query_tokens(host, b));
    std::printf(p.batch > 16 ? " ...]" : "]");
  }
  std::printf(" (R=%d) s_k=", p.rows());
  if (f.varlen_mean > 0)
    std::printf("varlen mean %.0f (requested %d)", mean, f.varlen_mean);
  else
    std::printf("%d", p.batch > 0 ? host.seqlens[0] : 0);
  std::printf(" d=%d/%d page=%d %s%s%s scale=%.6g lse=%s\n", p.d_qk, p.d_v, p.page_size, to_string(p.q_dtype),
              p.kv_format == KvFormat::kDense ? "" : (std::string(" kv=") + to_string(p.kv_format)).c_str(),
              host.causal ? " causal" : "", host.softmax_scale, f.lse_base == "2" ? "log2" : "ln");
  return {{"batch", p.batch},
          {"s_q", p.s_q},
          {"h_q", p.h_q},
          {"h_kv", p.h_kv},
          {"d_qk", p.d_qk},
          {"d_v", p.d_v},
          {"page_size", p.page_size},
          {"seqlens", host.seqlens},
          {"dtype", to_string(p.q_dtype)},
          {"kv_format", to_string(p.kv_format)},
          {"causal", host.causal},
          {"softmax_scale", host.softmax_scale},
          {"lse_base", f.lse_base == "2" ? "2" : "e"},
          {"seed", f.seed},
          {"q_lens", p.varlen_q ? json(q_lens) : json(nullptr)}};
}

// docs/PERF.md, "Performance method": FLOPs = 2·b·s_q·h_q·s̄_k·(d_qk + d_v), 576 + 512 for MLA; varlen:
// 2·h_q·Σ q_len_i·s_k_i·(d_qk + d_v).
double decode_flops(const testing::HostData& host) {
  const DecodeProblem& p = host.problem;
  double query_key_pairs = 0;
  for (int32_t b = 0; b < p.batch; ++b)
    query_key_pairs += static_cast<double>(query_tokens(host, b)) * host.seqlens[b];
  return 2.0 * p.h_q * query_key_pairs * (p.d_qk + p.d_v);
}

// docs/PERF.md, "Performance method": bytes = b·s̄_k·h_kv·d_qk·2 + q + out (b·s̄_k·576·2 + q + out for MLA).
double decode_bytes(const testing::HostData& host) {
  const DecodeProblem& p = host.problem;
  const double elem = static_cast<double>(dtype_bytes(p.q_dtype));
  const double rows =
      (p.varlen_q ? static_cast<double>(host.cu_seqlens_q.back()) : static_cast<double>(p.batch) * p.s_q) *
      p.h_q;
  const double kv_row_bytes =
      static_cast<double>(api::kv_row_elements(p)) * static_cast<double>(dtype_bytes(p.kv_dtype));
  return static_cast<double>(total_tokens(host)) * p.h_kv * kv_row_bytes + rows * (p.d_qk + p.d_v) * elem;
}

void run_cpu(const testing::HostData& host, const RunFlags& f, RunReport& report) {
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
  report.doc["reference"] = {{"threads", threads}, {"seconds", seconds}};
  report.doc["checksum"] = {{"sum_out", out_sum}, {"sum_abs_out", out_abs}, {"sum_finite_lse", lse_sum}};
}

// Runs plan + decode once on `stream` and waits; throws on failure.
void plan_and_decode(const testing::DeviceData& d, const Options& options, cudaStream_t stream) {
  const Status planned = plan(d.args, d.d_plan, d.plan_size, stream, options);
  if (!planned.ok()) throw std::runtime_error("etap::plan failed: " + planned.message());
  const Status decoded =
      decode(d.args, d.d_plan, d.plan_size, d.d_workspace, d.workspace_size, stream, options);
  if (!decoded.ok()) throw std::runtime_error("etap::decode failed: " + decoded.message());
  ETAP_CUDA_CHECK(cudaStreamSynchronize(stream));
}

void run_gpu(const testing::HostData& host, const RunFlags& f, const GpuChoice& gpu, RunReport& report) {
  Options options;
  options.num_sms = f.num_sms;
  testing::DeviceData device;
  testing::upload(host, lse_base(f), options, device);
  testing::Stream stream;
  // upload()'s copies and memsets run on the legacy default stream, which a non-blocking stream skips.
  ETAP_CUDA_CHECK(cudaDeviceSynchronize());
  plan_and_decode(device, options, stream.get());

  if (f.no_check) {
    std::printf("error vs reference: not checked (--no-check)\n");
  } else {
    const DecodeProblem& p = host.problem;
    const auto tokens = static_cast<std::size_t>(host.out_tokens());
    std::vector<uint16_t> out(tokens * p.h_q * p.d_v);
    std::vector<float> lse(tokens * p.h_q);
    ETAP_CUDA_CHECK(
        cudaMemcpy(out.data(), device.d_out, out.size() * sizeof(uint16_t), cudaMemcpyDeviceToHost));
    ETAP_CUDA_CHECK(cudaMemcpy(lse.data(), device.d_lse, lse.size() * sizeof(float), cudaMemcpyDeviceToHost));
    const int threads = reference_threads(f.threads);
    std::printf("computing the CPU reference (fp64, %d threads) ...", threads);
    std::fflush(stdout);
    const Clock::time_point start = Clock::now();
    std::vector<double> ref_out, ref_lse, ref_weighted_abs;
    reference::decode(host.view(), ref_out, ref_lse, lse_base(f), threads, &ref_weighted_abs);
    std::printf(" %.1f s\n", seconds_since(start));
    // Varlen: the packed tokens no request owns must keep upload()'s poison; the rest is compared.
    const int64_t padding_writes = testing::padding_written(host, out, lse);
    testing::drop_padding(host, &out, &lse);
    testing::drop_padding(host, &ref_out, &ref_lse, &ref_weighted_abs);
    const testing::Comparison c = testing::compare(out, p.out_dtype, lse, ref_out, ref_lse, ref_weighted_abs);
    std::printf("error vs reference: %s\n", c.describe().c_str());
    if (padding_writes > 0)
      std::printf("error: %lld out/lse elements written in packed tokens no request owns\n",
                  static_cast<long long>(padding_writes));
    report.pass = c.pass && padding_writes == 0;
    report.doc["check"] = c;
  }

  testing::L2Flusher flusher(gpu.device);
  const testing::TimingSpec spec{f.warmup, f.iters};
  const testing::Call launch_decode = [&](int, cudaStream_t s) {
    const Status status = decode(device.args, device.d_plan, device.plan_size, device.d_workspace,
                                 device.workspace_size, s, options);
    if (!status.ok()) throw std::runtime_error("etap::decode failed: " + status.message());
  };
  const testing::Call launch_plan = [&](int, cudaStream_t s) {
    const Status status = plan(device.args, device.d_plan, device.plan_size, s, options);
    if (!status.ok()) throw std::runtime_error("etap::plan failed: " + status.message());
  };
  std::printf("timing (L2 flushed before each call, median of %d after %d warm-up) ...\n", f.iters, f.warmup);
  std::fflush(stdout);
  const double plan_us = testing::median(testing::time_calls(launch_plan, &flusher, spec, stream.get()));
  const double decode_us = testing::median(testing::time_calls(launch_decode, &flusher, spec, stream.get()));

  const double bytes = decode_bytes(host), flops = decode_flops(host);
  const double gbps = bytes / (decode_us * 1e3), tflops = flops / (decode_us * 1e6);
  std::printf("decode: %9.2f µs  %8.1f GB/s  %7.2f TFLOP/s  (%.1f MB, %.3g GFLOP)\n", decode_us, gbps, tflops,
              bytes / 1e6, flops / 1e9);
  std::printf("plan:   %9.2f µs  (separate call, not included above)\n", plan_us);
  report.doc["timing"] = {{"iters", f.iters},   {"warmup", f.warmup}, {"decode_us", decode_us},
                          {"plan_us", plan_us}, {"gbps", gbps},       {"tflops", tflops},
                          {"bytes", bytes},     {"flops", flops}};
}

int run_command(const RunFlags& f) {
  if (!f.json_path.empty())
    if (const std::string reason = unwritable_reason(f.json_path); !reason.empty()) {
      std::fprintf(stderr, "etap run: %s\n", reason.c_str());
      return kExitCannotWrite;
    }
  const testing::ProblemSpec spec = make_spec(f);
  Status kernel_refusal;  // set when only the GPU run is refused (a limit of the FP8 kernels)
  try {
    if (const Status status = validate_flags(spec, f); !status.ok()) {
      if (!refused_only_for_the_fp8_kernel(spec, f, status)) {
        std::fprintf(stderr, "etap run: the library refuses this problem: %s\n", status.message().c_str());
        return kExitRefused;
      }
      kernel_refusal = status;
    }
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "etap run: %s\n", e.what());
    return kExitRefused;
  }

  GpuChoice gpu;
  if (!f.cpu) {
    gpu = find_sm90_gpu();
    if (!gpu.found() && f.require_gpu) {
      std::fprintf(stderr, "etap run: no compute-capability-9.0 GPU found (%s)\n", gpu.reason.c_str());
      return kExitNoGpu;
    }
    if (!gpu.found())
      std::printf("etap: no compute-capability-9.0 GPU found (%s); running the CPU reference instead\n",
                  gpu.reason.c_str());
  }
  if (gpu.found() && !kernel_refusal.ok()) {
    std::fprintf(stderr, "etap run: the library refuses this problem: %s\n",
                 kernel_refusal.message().c_str());
    return kExitRefused;
  }
  RunReport report;
  if (gpu.found()) {
    ETAP_CUDA_CHECK(cudaSetDevice(gpu.device));
    const std::string name = describe_gpu(gpu.device, gpu.prop);
    std::printf("etap run on %s\n", name.c_str());
    report.doc["device"] = name;
  } else {
    report.doc["device"] = "cpu";
  }

  const Clock::time_point start = Clock::now();
  std::printf("building inputs ...");
  std::fflush(stdout);
  testing::HostData host;
  try {
    host = testing::make_problem(spec);
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "\netap run: %s\n", e.what());
    return kExitRefused;
  }
  const std::size_t kv_bytes = host.kv_cache.size() * sizeof(uint16_t) + host.kv_bytes.size();
  std::printf(" %.1f s (KV cache %.1f MB)\n", seconds_since(start), static_cast<double>(kv_bytes) / 1e6);
  report.doc["problem"] = describe_problem(host, f);

  if (gpu.found())
    run_gpu(host, f, gpu, report);
  else
    run_cpu(host, f, report);

  report.doc["pass"] = report.pass;
  if (!f.json_path.empty()) {
    std::ofstream file(f.json_path);
    file << report.doc.dump(2) << "\n";
    file.close();
    if (!file) {
      std::fprintf(stderr, "etap run: cannot write %s\n", f.json_path.c_str());
      return kExitCannotWrite;
    }
    std::printf("wrote %s\n", f.json_path.c_str());
  }
  if (!report.pass) std::printf("etap run: the output does not match the reference (see the error line)\n");
  return report.pass ? kExitOk : kExitFailed;
}

}  // namespace

void add_run_command(CLI::App& app, int& exit_code) {
  auto flags = std::make_shared<RunFlags>();
  CLI::App* run = app.add_subcommand(
      "run",
      "Decode one problem on the GPU (default: the paper's b=16 h_q=16 s_k=4096 bf16, d 576/512, page 64), "
      "check it against the CPU reference and time it; without a compute-capability-9.0 GPU, run the CPU "
      "reference on it");
  add_int_flag(run, kBatch, flags->batch);
  CLI::Option* seqlen = add_int_flag(run, kSeqlen, flags->seqlen);
  add_int_flag(run, kVarlen, flags->varlen_mean)->excludes(seqlen);
  add_int_flag(run, kHq, flags->h_q);
  add_int_flag(run, kSq, flags->s_q);
  CLI::Option* q_lens = add_int_flag(run, kQLens, flags->q_lens);
  add_int_flag(run, kVarlenQ, flags->varlen_q_max)->excludes(q_lens);
  add_int_flag(run, kHkv, flags->h_kv);
  add_int_flag(run, kPageSize, flags->page_size);
  add_head_dims_flag(run, flags->head_dims);
  run->add_flag("--causal", flags->causal, "Causal MTP mask (bottom-right aligned)");
  add_dtype_flag(run, flags->dtype);
  add_kv_format_flag(run, flags->kv_format);
  run->add_option("--scale", flags->scale, "Softmax scale (default: DeepSeek-V3's)")->capture_default_str();
  run->add_option("--lse-base", flags->lse_base, "Base of the returned lse: e or 2")
      ->capture_default_str()
      ->check(CLI::IsMember({"e", "2"}));
  run->add_option("--seed", flags->seed, "Random seed of the inputs")->capture_default_str();
  add_int_flag(run, kIters, flags->iters);
  add_int_flag(run, kWarmup, flags->warmup);
  add_int_flag(run, kNumSms, flags->num_sms);
  add_int_flag(run, kThreads, flags->threads);
  run->add_flag("--no-check", flags->no_check,
                "Skip the CPU reference (long contexts take a while on the CPU)");
  CLI::Option* cpu =
      run->add_flag("--cpu", flags->cpu, "Run the CPU reference only, even where a GPU is present");
  run->add_flag("--require-gpu", flags->require_gpu, "Exit 2 instead of falling back to the CPU reference")
      ->excludes(cpu);
  add_json_flag(run, flags->json_path, "Also write the problem, the check and the timing as JSON");
  run->footer(kExitStatusHelp);
  run->callback([flags, &exit_code] { exit_code = run_command(*flags); });
}

}  // namespace etap::cli
