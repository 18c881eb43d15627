// What the host keeps between calls (docs/DESIGN.md, "Host time of a call") must not change results, and a
// context destroyed by cudaDeviceReset, which takes the kernels' shared-memory opt-in with it, must not
// break the next call.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <etap/etap.hpp>
#include <vector>

#include "gpu/gpu_test_util.hpp"
#include "testing/problem.hpp"

namespace etap {
namespace {

// out and lse of one plan + decode on a small split problem, every buffer freed before it returns.
std::vector<uint8_t> decode_once() {
  testing::ProblemSpec spec;
  spec.batch = 3;
  spec.seqlens = {2000, 70, 900};
  const testing::HostData host = testing::make_problem(spec);
  const Options options{};
  testing::DeviceData device;
  testing::upload(host, LseBase::kNatural, options, device);
  Status status = plan(device.args, device.d_plan, device.plan_size, nullptr, options);
  EXPECT_TRUE(status.ok()) << status.message();
  status = decode(device.args, device.d_plan, device.plan_size, device.d_workspace, device.workspace_size,
                  nullptr, options);
  EXPECT_TRUE(status.ok()) << status.message();
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  const DecodeProblem& p = host.problem;
  const std::size_t out_bytes = static_cast<std::size_t>(p.batch) * p.s_q * p.h_q * p.d_v * sizeof(uint16_t);
  const std::size_t lse_bytes = static_cast<std::size_t>(p.batch) * p.h_q * p.s_q * sizeof(float);
  std::vector<uint8_t> result(out_bytes + lse_bytes);
  EXPECT_EQ(cudaMemcpy(result.data(), device.d_out, out_bytes, cudaMemcpyDeviceToHost), cudaSuccess);
  EXPECT_EQ(cudaMemcpy(result.data() + out_bytes, device.d_lse, lse_bytes, cudaMemcpyDeviceToHost),
            cudaSuccess);
  return result;
}

TEST(HostCache, RepeatedCallsGiveTheSameResult) {
  ETAP_REQUIRE_SM90();
  const std::vector<uint8_t> first = decode_once();
  EXPECT_EQ(decode_once(), first);
}

TEST(HostCache, DecodeWorksAfterCudaDeviceReset) {
  ETAP_REQUIRE_SM90();
  const std::vector<uint8_t> before = decode_once();
  ASSERT_EQ(cudaDeviceReset(), cudaSuccess);
  const std::vector<uint8_t> after = decode_once();  // the opt-in is recorded but gone: set again
  EXPECT_EQ(after, before);
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
}

}  // namespace
}  // namespace etap
