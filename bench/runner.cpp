#include "runner.hpp"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <etap/reference.hpp>
#include <map>
#include <memory>
#include <optional>
#include <tuple>

#include "ceilings.hpp"
#include "cublas_handle.hpp"
#include "cuda_util.hpp"
#include "implementation.hpp"
#include "metrics.hpp"
#include "table.hpp"
#include "testing/problem.hpp"
#include "testing/timing.hpp"
#include "timing_problem.hpp"

#ifndef ETAP_VERSION
#define ETAP_VERSION "unknown"
#endif

namespace etap::bench {

using testing::Call;
using testing::L2Flusher;
using testing::time_calls;
using testing::time_graph;
using testing::TimingSpec;
namespace {

std::string utc_now() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

Machine describe_machine(int device, CublasHandle& cublas) {
  Machine m;
  cudaDeviceProp prop{};
  ETAP_BENCH_CUDA(cudaGetDeviceProperties(&prop, device));
  auto attribute = [device](cudaDeviceAttr a) {
    int v = 0;
    if (cudaDeviceGetAttribute(&v, a, device) != cudaSuccess) {
      cudaGetLastError();
      return 0;
    }
    return v;
  };
  m.gpu = prop.name;
  m.device = device;
  m.sms = prop.multiProcessorCount;
  m.cc_major = prop.major;
  m.cc_minor = prop.minor;
  m.l2_bytes = attribute(cudaDevAttrL2CacheSize);
  m.memory_bytes = static_cast<int64_t>(prop.totalGlobalMem);
  m.sm_clock_khz = attribute(cudaDevAttrClockRate);
  m.memory_clock_khz = attribute(cudaDevAttrMemoryClockRate);
  m.bus_width_bits = attribute(cudaDevAttrGlobalMemoryBusWidth);
  if (m.memory_clock_khz > 0 && m.bus_width_bits > 0)
    m.dram_peak_gbps = dram_peak_gbps(m.memory_clock_khz, m.bus_width_bits);
  cudaDriverGetVersion(&m.driver_version);
  cudaRuntimeGetVersion(&m.runtime_version);
  m.cublas_version = cublas.version();
  m.etap_version = ETAP_VERSION;
  m.date = utc_now();
  return m;
}

std::string describe(const Machine& m) {
  char buf[256];
  std::snprintf(buf, sizeof buf,
                "%s (sm_%d%d, %d SMs, L2 %lld MiB, DRAM peak %.0f GB/s), driver %d, runtime %d",
                m.gpu.c_str(), m.cc_major, m.cc_minor, m.sms, static_cast<long long>(m.l2_bytes >> 20),
                m.dram_peak_gbps, m.driver_version, m.runtime_version);
  return buf;
}

// After a CUDA error: a sticky one (e.g. an illegal address) leaves the context unusable and ends the run.
void rethrow_if_context_lost(const std::string& where) {
  if (const cudaError_t sticky = cudaDeviceSynchronize(); sticky != cudaSuccess)
    throw CudaError("CUDA context lost (" + where + "): " + cudaGetErrorString(sticky));
  cudaGetLastError();
}

std::string format_us(double us) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f µs", us);
  return buf;
}

std::string format_percent(double pct) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.0f%%", pct);
  return buf;
}

// The shape a correctness check depends on: the check problem takes h_q, s_q, causal, dtype, h_kv, page size
// and head dims from the configurations and its own small lengths.
using ShapeKey =
    std::tuple<int32_t, int32_t, bool, std::string, int32_t, int32_t, int32_t, int32_t, std::string, bool>;
ShapeKey shape_of(const BenchConfig& c) {
  return {c.h_q,  c.s_q, c.causal && c.s_q > 1, c.dtype,   c.h_kv, c.page_size,
          c.d_qk, c.d_v, c.kv_format,           c.varlen_q};
}

// describe(c) from h_q on: what the check problem shares with c.
std::string describe_shape(const BenchConfig& c) {
  const std::string full = describe(c);
  return full.substr(full.find("h_q="));
}

struct Reference {
  testing::HostData host;
  std::vector<double> out, lse, weighted_abs;
};

Reference make_reference(const BenchConfig& c, uint64_t seed) {
  testing::ProblemSpec spec;
  spec.batch = kCheckBatch;
  spec.seqlens = check_seqlens();
  spec.h_q = c.h_q;
  spec.s_q = c.s_q;
  spec.h_kv = c.h_kv;
  spec.page_size = c.page_size;
  spec.d_qk = c.d_qk;
  spec.d_v = c.d_v;
  spec.causal = c.causal;
  spec.dtype = config_dtype(c);
  spec.kv_format = config_kv_format(c);
  spec.seed = seed;
  if (c.varlen_q) {  // the longest and a shorter query length (none when s_q = 1)
    spec.varlen_q = true;
    spec.q_lens = {c.s_q, c.s_q / 2};
  }
  Reference r{testing::make_problem(spec), {}, {}, {}};
  reference::decode(r.host.view(), r.out, r.lse, LseBase::kNatural, 0, &r.weighted_abs);
  return r;
}

// Runs one call on the check problem (out and lse poisoned by upload) and compares with the fp64 reference.
CallStatus check(Implementation& impl, const Reference& ref, const Options& options, cudaStream_t stream) {
  testing::DeviceData dev;
  testing::upload(ref.host, LseBase::kNatural, options, dev);
  // upload's poisoning memsets run on the legacy stream, which our non-blocking stream does not wait for.
  ETAP_BENCH_CUDA(cudaDeviceSynchronize());
  CallStatus s = impl.setup(dev.args, ref.host.seqlens, stream);
  if (s.ok()) s = impl.call(dev.args, stream);
  ETAP_BENCH_CUDA(cudaStreamSynchronize(stream));
  impl.release();
  if (!s.ok()) return s;
  const DecodeProblem& p = ref.host.problem;
  const auto tokens = static_cast<size_t>(ref.host.out_tokens());
  std::vector<uint16_t> out(tokens * p.h_q * p.d_v);
  std::vector<float> lse(tokens * p.h_q);
  ETAP_BENCH_CUDA(cudaMemcpy(out.data(), dev.d_out, out.size() * sizeof(uint16_t), cudaMemcpyDeviceToHost));
  ETAP_BENCH_CUDA(cudaMemcpy(lse.data(), dev.d_lse, lse.size() * sizeof(float), cudaMemcpyDeviceToHost));
  // Varlen: packed tokens no request owns must stay poisoned; only the owned ones are compared.
  const int64_t padding_writes = testing::padding_written(ref.host, out, lse);
  std::vector<double> ref_out = ref.out, ref_lse = ref.lse, ref_weighted_abs = ref.weighted_abs;
  testing::drop_padding(ref.host, &out, &lse);
  testing::drop_padding(ref.host, &ref_out, &ref_lse, &ref_weighted_abs);
  const testing::Comparison c = testing::compare(out, p.out_dtype, lse, ref_out, ref_lse, ref_weighted_abs);
  if (padding_writes > 0)
    return {Outcome::kFailed, std::to_string(padding_writes) + " out/lse elements written in padding tokens"};
  return {c.pass ? Outcome::kOk : Outcome::kFailed, c.describe()};
}

// A call that returned an error status inside the timing loop.
struct CallFailed : std::runtime_error {
  CallStatus status;
  explicit CallFailed(CallStatus s) : std::runtime_error(s.message), status(std::move(s)) {}
};

Record base_record(const std::string& impl, const BenchConfig& config, const TimingProblem& problem) {
  Record r;
  r.impl = impl;
  r.config = config;
  const DecodeProblem& p = problem.problem();
  Workload w = make_workload(config.s_q, config.h_q, problem.seqlens(),
                             static_cast<int64_t>(dtype_bytes(p.q_dtype)), p.h_kv, p.d_qk, p.d_v);
  if (p.kv_format != KvFormat::kDense)  // FP8: the bytes of the cache as stored
    w.kv_row_bytes = p.kv_format == KvFormat::kFp8DeepSeekV32 ? Fp8DeepSeekV32Token::kBytes : p.d_qk;
  r.mean_seqlen = w.mean_seqlen();
  r.max_seqlen = *std::max_element(problem.seqlens().begin(), problem.seqlens().end());
  r.bytes = w.bytes();
  r.kv_bytes = w.kv_bytes();
  r.flops = w.flops();
  if (config.varlen_q) {  // Σ q_len_i · s_k_i query-key pairs; q and out of the packed tokens only
    double pairs = 0, tokens = 0;
    for (size_t i = 0; i < problem.q_lens().size(); ++i) {
      pairs += static_cast<double>(problem.q_lens()[i]) * problem.seqlens()[i];
      tokens += problem.q_lens()[i];
    }
    const double elem = static_cast<double>(dtype_bytes(p.q_dtype));
    r.flops = 2.0 * config.h_q * pairs * (p.d_qk + p.d_v);
    r.bytes = r.kv_bytes + tokens * config.h_q * (p.d_qk + p.d_v) * elem;
  }
  return r;
}

void time_implementation(Implementation& impl, const TimingProblem& problem, const RunOptions& options,
                         L2Flusher& flusher, cudaStream_t stream, Record& r) {
  CallStatus s = impl.setup(problem.args(0), problem.seqlens(), stream);
  if (s.ok()) s = impl.call(problem.args(0), stream);  // a probe: unsupported shapes say so here
  ETAP_BENCH_CUDA(cudaStreamSynchronize(stream));
  if (!s.ok()) {
    r.outcome = s.outcome;
    r.message = s.message;
    return;
  }
  const TimingSpec spec{options.warmup, options.iters};
  const Call call = [&](int i, cudaStream_t st) {
    if (CallStatus cs = impl.call(problem.args(i), st); !cs.ok()) throw CallFailed(cs);
  };
  const std::vector<double> us = options.graph ? time_graph(call, options.graph_calls, &flusher, spec, stream)
                                               : time_calls(call, &flusher, spec, stream);
  const Summary summary = summarize(us);
  r.samples = static_cast<int32_t>(summary.count);
  r.us = summary.median;
  r.us_min = summary.min;
  r.us_max = summary.max;
  if (impl.has_plan()) {
    const Call plan = [&](int, cudaStream_t st) {
      if (CallStatus cs = impl.plan(problem.args(0), st); !cs.ok()) throw CallFailed(cs);
    };
    r.plan_us = median(time_calls(plan, &flusher, spec, stream));
  }
  r.outcome = Outcome::kOk;
}

}  // namespace

void run_bench(const RunOptions& options, Report& report, std::ostream& log) {
  ETAP_BENCH_CUDA(cudaSetDevice(options.device));
  Stream stream;
  CublasHandle cublas;
  L2Flusher flusher(options.device);

  report.machine = describe_machine(options.device, cublas);
  Method& method = report.method;
  method.iters = options.iters;
  method.warmup = options.warmup;
  method.l2_flush_bytes = flusher.bytes();
  method.graph = options.graph;
  method.graph_calls = options.graph ? options.graph_calls : 0;
  method.num_sms = options.num_sms;
  set_plan_fixed_cost(options.fixed_cost);
  method.checked = options.check;
  method.check_problem = options.check
                             ? "b=2, seqlens {300, 137}, each configuration's h_q/s_q/causal/dtype/h_kv/"
                               "page size/head dims, poisoned cache and out, vs reference::decode (fp64)"
                             : "";
  method.notes =
      "L2 flushed (cudaMemsetAsync of 2x L2) before every timed run, outside the events; "
      "decode call = all kernels it launches; plan kernel timed on its own; "
      "padded uses etap::plan's plan and workspace; "
      "cublas = gather + GEMM QK^T + masked softmax + GEMM PV, workspace allocated outside the timed region";
  if (options.graph)
    method.notes +=
        "; graph mode: each replay runs graph_calls calls captured in one CUDA graph, rotating over "
        "enough KV copies to exceed 2x L2, time per call = replay time / graph_calls";
  log << describe(report.machine) << "\n";

  log << "measuring ceilings (1 GiB copy, 1 GiB read-only stream, bf16 GEMM 8192^3)..." << std::flush;
  report.ceilings = measure_ceilings(options.device, cublas, stream.get());
  log << " copy " << static_cast<int64_t>(report.ceilings.copy_gbps) << " GB/s, read-only "
      << static_cast<int64_t>(report.ceilings.read_gbps) << " GB/s, GEMM " << report.ceilings.gemm_tflops
      << " TFLOP/s\n";

  Options etap_options;
  etap_options.num_sms = options.num_sms;
  std::vector<std::unique_ptr<Implementation>> impls;
  for (const std::string& name : options.impls) {
    auto impl = make_implementation(name, etap_options, cublas);
    if (!impl) throw std::invalid_argument("unknown implementation '" + name + "'");
    impls.push_back(std::move(impl));
  }

  // Correctness first: an implementation that fails its check is not timed on configurations of that shape.
  std::map<std::pair<std::string, ShapeKey>, CallStatus> checks;
  if (options.check) {
    std::map<ShapeKey, BenchConfig> shapes;
    for (const BenchConfig& c : options.configs) shapes.emplace(shape_of(c), c);
    for (const auto& [key, config] : shapes) {
      const Reference ref = make_reference(config, options.seed);
      for (auto& impl : impls) {
        CallStatus s;
        try {
          s = check(*impl, ref, etap_options, stream.get());
        } catch (const std::exception& e) {
          s = {Outcome::kError, e.what()};
          rethrow_if_context_lost("checking " + impl->name());
        }
        log << "check " << impl->name() << " " << describe_shape(config) << ": "
            << (s.ok() ? "pass" : to_string(s.outcome)) << (s.message.empty() ? "" : " (" + s.message + ")")
            << "\n";
        checks[{impl->name(), key}] = s;
      }
    }
  }

  const int64_t rotate_bytes = options.graph ? 2 * flusher.l2_bytes() : 0;
  const size_t n = options.configs.size();
  for (size_t i = 0; i < n; ++i) {
    const BenchConfig& config = options.configs[i];
    char prefix[32];
    std::snprintf(prefix, sizeof prefix, "[%*zu/%zu] ", static_cast<int>(std::to_string(n).size()), i + 1, n);
    log << prefix << describe(config) << std::flush;
    std::optional<TimingProblem> problem;
    std::string setup_error;
    try {
      problem.emplace(config, rotate_bytes, options.graph_calls, options.seed + i, stream.get());
    } catch (const CudaError& e) {
      setup_error = e.what();  // e.g. out of memory: every implementation of this configuration reports it
      rethrow_if_context_lost("preparing " + describe(config));
    }
    for (auto& impl : impls) {
      Record r;
      if (problem) {
        r = base_record(impl->name(), config, *problem);
      } else {
        r.impl = impl->name();
        r.config = config;
      }
      const auto found = checks.find({impl->name(), shape_of(config)});
      if (!problem) {
        r.outcome = Outcome::kError;
        r.message = setup_error;
      } else if (found != checks.end() && !found->second.ok()) {
        r.outcome = found->second.outcome;
        r.message = (r.outcome == Outcome::kFailed ? "check: " : "") + found->second.message;
      } else {
        try {
          time_implementation(*impl, *problem, options, flusher, stream.get(), r);
        } catch (const CallFailed& e) {
          r.outcome = e.status.outcome;
          r.message = e.status.message;
        } catch (const CudaError& e) {
          r.outcome = Outcome::kError;
          r.message = e.what();
          try {
            rethrow_if_context_lost(impl->name() + " on " + describe(config));
          } catch (...) {
            impl->release();
            report.records.push_back(r);
            log << " | " << impl->name() << " error\n";
            throw;
          }
        }
      }
      impl->release();
      if (r.outcome == Outcome::kOk) {
        derive(r, report.ceilings);
        log << " | " << r.impl << " " << format_us(r.us) << " " << format_percent(r.pct_copy);
      } else {
        log << " | " << r.impl << " " << to_string(r.outcome);
      }
      log << std::flush;
      report.records.push_back(std::move(r));
    }
    log << "\n";
  }
}

}  // namespace etap::bench
