// Each golden case (tests/data/golden, fp64 computed independently) through etap::plan + etap::decode,
// compared with its out and lse under testing::compare's bound (DESIGN.md §4), in both lse bases.
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <cmath>
#include <etap/etap.hpp>
#include <etap/reference.hpp>
#include <numbers>
#include <ostream>
#include <string>
#include <vector>

#include "gpu/gpu_test_util.hpp"
#include "testing/golden.hpp"
#include "testing/problem.hpp"

namespace etap {
namespace {

const std::string kGoldenDir = std::string(ETAP_TEST_DATA_DIR) + "/golden";

struct GoldenParam {
  std::string name;
  LseBase base;
  std::string label() const { return name + (base == LseBase::kBase2 ? "_lse2" : "_lse_e"); }
  friend void PrintTo(const GoldenParam& p, std::ostream* os) { *os << p.label(); }
};

class GoldenGpu : public ::testing::TestWithParam<GoldenParam> {};

TEST_P(GoldenGpu, MatchesFp64) {
  ETAP_REQUIRE_SM90();
  const auto& [name, base] = GetParam();
  testing::GoldenCase golden = testing::load_golden(kGoldenDir, name);
  ASSERT_EQ(golden.base, LseBase::kNatural) << "the stored cases use natural-log lse";
  if (base == LseBase::kBase2)
    for (double& l : golden.lse)
      if (std::isfinite(l)) l *= std::numbers::log2e;

  testing::DeviceData device;
  testing::upload(golden.data, base, Options{}, device);
  ETAP_CUDA_OK(cudaDeviceSynchronize());
  const Status planned = plan(device.args, device.d_plan, device.plan_size, nullptr);
  ASSERT_TRUE(planned.ok()) << planned.message();
  const Status decoded = decode(device.args, device.d_plan, device.plan_size, device.d_workspace,
                                device.workspace_size, nullptr);
  ASSERT_TRUE(decoded.ok()) << decoded.message();
  ETAP_CUDA_OK(cudaDeviceSynchronize());

  const DecodeProblem& p = golden.data.problem;
  std::vector<uint16_t> out(static_cast<std::size_t>(p.batch) * p.s_q * p.h_q * p.d_v);
  std::vector<float> lse(static_cast<std::size_t>(p.batch) * p.h_q * p.s_q);
  ETAP_CUDA_OK(cudaMemcpy(out.data(), device.d_out, out.size() * sizeof(uint16_t), cudaMemcpyDeviceToHost));
  ETAP_CUDA_OK(cudaMemcpy(lse.data(), device.d_lse, lse.size() * sizeof(float), cudaMemcpyDeviceToHost));

  // The bound's Σ p·|v| comes from the CPU reference on the same inputs; out/lse stay the golden values.
  std::vector<double> cpu_out, cpu_lse, weighted_abs;
  reference::decode(golden.data.view(), cpu_out, cpu_lse, base, 0, &weighted_abs);
  const testing::Comparison c = testing::compare(out, p.out_dtype, lse, golden.out, golden.lse, weighted_abs);
  EXPECT_TRUE(c.pass) << name << ": " << c.describe();
}

std::vector<GoldenParam> golden_params() {
  std::vector<GoldenParam> params;
  for (const auto& name : testing::golden_case_names())
    for (LseBase base : {LseBase::kNatural, LseBase::kBase2}) params.push_back({name, base});
  return params;
}

INSTANTIATE_TEST_SUITE_P(Cases, GoldenGpu, ::testing::ValuesIn(golden_params()),
                         [](const auto& info) { return info.param.label(); });

}  // namespace
}  // namespace etap
