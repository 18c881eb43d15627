// The quick conformance sweep (`etap check --quick`) and the golden cases: the kernel against the fp64
// reference on poisoned inputs, each config run twice and compared bit for bit.
#include <gtest/gtest.h>

#include <string>

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

TEST(Conformance, GoldenCasesPass) {
  ETAP_REQUIRE_SM90();
  testing::ConformanceRunner runner;
  for (const auto& name : testing::golden_case_names())
    for (LseBase base : {LseBase::kNatural, LseBase::kBase2}) {
      const testing::ConformanceResult result = runner.run_golden(kGoldenDir, name, base);
      EXPECT_TRUE(result.pass) << result.name << ": " << result.failure;
    }
}

}  // namespace
}  // namespace etap
