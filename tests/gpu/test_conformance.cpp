// The quick conformance sweep (`etap check --quick`) and the golden cases (tests/data/golden, fp64 computed
// independently), one test per case and lse base: the kernel against the fp64 reference on poisoned inputs,
// each run twice and compared bit for bit (docs/PERF.md, "Correctness method").
#include <gtest/gtest.h>

#include <ostream>
#include <string>
#include <vector>

#include "gpu/gpu_test_util.hpp"
#include "testing/conformance.hpp"
#include "testing/golden.hpp"

namespace etap {
namespace {

const std::string kGoldenDir = std::string(ETAP_TEST_DATA_DIR) + "/golden";

TEST(Conformance, QuickSweepPasses) {
  ETAP_REQUIRE_SM90();
  testing::ConformanceRunner runner;
  int failed = 0;
  for (const auto& config : testing::conformance_sweep(/*quick=*/true)) {
    const testing::ConformanceResult result = runner.run(config);
    EXPECT_TRUE(result.pass) << result.name << ": " << result.failure;
    failed += !result.pass;
  }
  EXPECT_EQ(failed, 0) << "run `etap check --quick` for the per-config report";
}

struct GoldenParam {
  std::string name;
  LseBase base;
  std::string label() const { return name + (base == LseBase::kBase2 ? "_lse2" : "_lse_e"); }
  friend void PrintTo(const GoldenParam& p, std::ostream* os) { *os << p.label(); }
};

class Golden : public ::testing::TestWithParam<GoldenParam> {};

TEST_P(Golden, Passes) {
  ETAP_REQUIRE_SM90();
  testing::ConformanceRunner runner;
  const testing::ConformanceResult result = runner.run_golden(kGoldenDir, GetParam().name, GetParam().base);
  EXPECT_TRUE(result.pass) << result.name << ": " << result.failure;
}

std::vector<GoldenParam> golden_params() {
  std::vector<GoldenParam> params;
  for (const auto& name : testing::golden_case_names())
    for (LseBase base : {LseBase::kNatural, LseBase::kBase2}) params.push_back({name, base});
  return params;
}

INSTANTIATE_TEST_SUITE_P(Cases, Golden, ::testing::ValuesIn(golden_params()),
                         [](const auto& info) { return info.param.label(); });

}  // namespace
}  // namespace etap
