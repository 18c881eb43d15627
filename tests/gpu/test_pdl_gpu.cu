// Programmatic dependent launch: the decode kernel may become resident while the kernel before it in the
// stream still runs, so it must wait (griddepcontrol.wait) before its first global access. Steps of
// [engine writer →] plan → [engine writer →] decode issued back to back with no synchronisation, eagerly and
// in a CUDA graph, must give bit for bit what the same steps give when the stream is synchronised after
// every kernel. Consecutive steps alternate between two inputs (seqlens and q), so that a decode that reads
// the plan, the seqlens or q too early sees the other step's values and fails the comparison.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <etap/etap.hpp>
#include <vector>

#include "gpu/gpu_test_util.hpp"
#include "hopper/fence.cuh"
#include "testing/problem.hpp"

namespace etap {
namespace {

using ::etap::test::DeviceBuffer;

constexpr int kSteps = 48;
constexpr int kWriterBlocks = 8;  // leaves most SMs free for decode CTAs launched early
constexpr int kWriterThreads = 256;
// ~30 µs at the H200's 1.98 GHz: the window in which a decode launched early would read stale inputs.
constexpr long long kWriterDelayCycles = 1 << 16;

// An engine's kernel that writes decode inputs. It lets its programmatic dependents launch at once, as an
// engine's kernel may, then delays, then copies, so that a dependent reading before its wait sees old data.
__global__ void writer_kernel(const uint4* __restrict__ q_src, uint4* __restrict__ q_dst, int64_t q_vectors,
                              const int32_t* __restrict__ seqlens_src, int32_t* __restrict__ seqlens_dst,
                              int32_t batch) {
  hopper::launch_dependents();
  const long long start = clock64();
  while (clock64() - start < kWriterDelayCycles) {
  }
  const int64_t thread = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t threads = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = thread; i < q_vectors; i += threads) q_dst[i] = q_src[i];
  for (int64_t i = thread; i < batch; i += threads) seqlens_dst[i] = seqlens_src[i];
}

// Two inputs of one problem shape: same cache and block table, different seqlens and q. Splits requests
// (4 requests over all SMs), so the combine kernel runs too.
const std::vector<int32_t> kSeqlensA = {4000, 64, 1500, 0};
const std::vector<int32_t> kSeqlensB = {100, 3000, 1, 2500};

class PdlSteps : public ::testing::Test {
 protected:
  void SetUp() override {
    ETAP_REQUIRE_SM90();
    testing::ProblemSpec spec;
    spec.batch = static_cast<int32_t>(kSeqlensA.size());
    for (std::size_t i = 0; i < kSeqlensA.size(); ++i)
      spec.seqlens.push_back(std::max(kSeqlensA[i], kSeqlensB[i]));
    host_ = testing::make_problem(spec);
    spec.seed = 2;  // another q of the same shape
    const testing::HostData other = testing::make_problem(spec);
    testing::upload(host_, LseBase::kNatural, options_, device_);
    q_bytes_ = host_.q.size() * sizeof(uint16_t);
    ASSERT_EQ(q_bytes_ % sizeof(uint4), 0u);
    q_src_[0] = DeviceBuffer(host_.q);
    q_src_[1] = DeviceBuffer(other.q);
    seqlens_src_[0] = DeviceBuffer(kSeqlensA);
    seqlens_src_[1] = DeviceBuffer(kSeqlensB);
    const DecodeProblem& p = host_.problem;
    out_bytes_ = static_cast<std::size_t>(p.batch) * p.s_q * p.h_q * p.d_v * sizeof(uint16_t);
    lse_bytes_ = static_cast<std::size_t>(p.batch) * p.h_q * p.s_q * sizeof(float);
    results_ = DeviceBuffer(kSteps * (out_bytes_ + lse_bytes_));
  }

  void write(int input, bool q, bool seqlens, cudaStream_t stream) {
    writer_kernel<<<kWriterBlocks, kWriterThreads, 0, stream>>>(
        q_src_[input].get<uint4>(), static_cast<uint4*>(device_.d_q),
        q ? static_cast<int64_t>(q_bytes_ / sizeof(uint4)) : 0, seqlens_src_[input].get<int32_t>(),
        device_.d_seqlens, seqlens ? host_.problem.batch : 0);
    ETAP_CUDA_OK(cudaGetLastError());
  }

  // One decode step on `input`, its out and lse copied to result slot `slot`. Even `order`: the writer
  // writes both before the plan, so decode follows the plan kernel; odd: q is written after the plan, so
  // decode follows the writer. `sync`: synchronise after every operation (the reference).
  void step(int input, int order, int slot, bool sync, cudaStream_t stream) {
    const auto maybe_sync = [&] {
      if (sync) ETAP_CUDA_OK(cudaStreamSynchronize(stream));
    };
    const DecodeArgs& args = device_.args;
    write(input, order % 2 == 0, true, stream);
    maybe_sync();
    Status status = plan(args, device_.d_plan, device_.plan_size, stream, options_);
    ASSERT_TRUE(status.ok()) << status.message();
    maybe_sync();
    if (order % 2 == 1) {
      write(input, true, false, stream);
      maybe_sync();
    }
    status = decode(args, device_.d_plan, device_.plan_size, device_.d_workspace, device_.workspace_size,
                    stream, options_);
    ASSERT_TRUE(status.ok()) << status.message();
    maybe_sync();
    auto* slot_base = results_.get<uint8_t>() + slot * (out_bytes_ + lse_bytes_);
    ETAP_CUDA_OK(cudaMemcpyAsync(slot_base, device_.d_out, out_bytes_, cudaMemcpyDeviceToDevice, stream));
    ETAP_CUDA_OK(
        cudaMemcpyAsync(slot_base + out_bytes_, device_.d_lse, lse_bytes_, cudaMemcpyDeviceToDevice, stream));
    maybe_sync();
  }

  // Step i uses input i % 2 and order (i / 2) % 2: both inputs meet both orders.
  void issue_steps(cudaStream_t stream) {
    for (int i = 0; i < kSteps; ++i) step(i % 2, (i / 2) % 2, i, false, stream);
  }

  // The synchronised result of each (input, order), then a poisoned results buffer.
  void make_reference(cudaStream_t stream) {
    for (int input = 0; input < 2; ++input)
      for (int order = 0; order < 2; ++order) step(input, order, 2 * input + order, true, stream);
    const std::vector<uint8_t> all = results_.download<uint8_t>(results_.bytes());
    const std::size_t slot_bytes = out_bytes_ + lse_bytes_;
    for (int input = 0; input < 2; ++input) {
      reference_[input].assign(all.begin() + 2 * input * slot_bytes,
                               all.begin() + (2 * input + 1) * slot_bytes);
      const std::vector<uint8_t> other_order(all.begin() + (2 * input + 1) * slot_bytes,
                                             all.begin() + (2 * input + 2) * slot_bytes);
      ASSERT_EQ(reference_[input], other_order) << "input " << input << ": the two orders differ";
    }
    ASSERT_NE(reference_[0], reference_[1]) << "the two inputs must give different outputs";
    poison_results();
  }

  // Synchronised: the steps run on a non-blocking stream, which does not wait for the legacy default stream.
  void poison_results() {
    ETAP_CUDA_OK(cudaMemset(results_.get(), 0xff, results_.bytes()));
    ETAP_CUDA_OK(cudaDeviceSynchronize());
  }

  void expect_matches_reference() {
    const std::vector<uint8_t> all = results_.download<uint8_t>(results_.bytes());
    const std::size_t slot_bytes = out_bytes_ + lse_bytes_;
    for (int i = 0; i < kSteps; ++i) {
      const uint8_t* got = all.data() + i * slot_bytes;
      const std::vector<uint8_t>& want = reference_[i % 2];
      if (std::memcmp(got, want.data(), slot_bytes) == 0) continue;
      std::size_t first = 0;
      while (got[first] == want[first]) ++first;
      FAIL() << "step " << i << " (input " << i % 2 << ", order " << (i / 2) % 2 << ") differs from the "
             << "synchronised run, first at byte " << first << (first < out_bytes_ ? " of out" : " of lse");
    }
  }

  Options options_{};  // all SMs of the device
  testing::HostData host_;
  testing::DeviceData device_;
  std::size_t q_bytes_ = 0, out_bytes_ = 0, lse_bytes_ = 0;
  DeviceBuffer q_src_[2], seqlens_src_[2], results_;
  std::vector<uint8_t> reference_[2];
};

TEST_F(PdlSteps, BackToBackEagerStepsMatchSynchronisedSteps) {
  testing::Stream stream;
  make_reference(stream.get());
  issue_steps(stream.get());
  ETAP_CUDA_OK(cudaStreamSynchronize(stream.get()));
  expect_matches_reference();
}

TEST_F(PdlSteps, CudaGraphOfStepsMatchesSynchronisedSteps) {
  testing::Stream stream;
  make_reference(stream.get());
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  ETAP_CUDA_OK(cudaStreamBeginCapture(stream.get(), cudaStreamCaptureModeGlobal));
  issue_steps(stream.get());
  ETAP_CUDA_OK(cudaStreamEndCapture(stream.get(), &graph));
  ETAP_CUDA_OK(cudaGraphInstantiate(&exec, graph, 0));
  for (int replay = 0; replay < 2; ++replay) {
    ETAP_CUDA_OK(cudaGraphLaunch(exec, stream.get()));
    ETAP_CUDA_OK(cudaStreamSynchronize(stream.get()));
    expect_matches_reference();
    poison_results();
  }
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
}

}  // namespace
}  // namespace etap
