// Which decode kernel a row tile runs (decode/launch/kernel_choice.hpp): full 64-row tiles take the rows-on-M
// kernel, smaller ones the transposed kernel; the benchmark's forced choices take one kernel for every tile.
#include <gtest/gtest.h>

#include "decode/launch/kernel_choice.hpp"
#include "decode/plan/plan.hpp"
#include "decode/plan/row_tiles.hpp"

namespace etap::decoding {
namespace {

bool rows_kernel_for(int32_t s_q, int32_t h_q, int32_t h_kv, KernelChoice choice = KernelChoice::kAuto) {
  return use_rows_kernel(row_tiling(s_q, h_q, h_kv).tile_rows(), choice);
}

TEST(KernelChoice, ThresholdIsAFullTileByDefault) {
  static_assert(kRowsKernelMinTileRows == kMaxTileRows);
  EXPECT_TRUE(use_rows_kernel(64, KernelChoice::kAuto));
  EXPECT_FALSE(use_rows_kernel(63, KernelChoice::kAuto));
  EXPECT_FALSE(use_rows_kernel(48, KernelChoice::kAuto));
  EXPECT_FALSE(use_rows_kernel(1, KernelChoice::kAuto));
  EXPECT_FALSE(use_rows_kernel(65, KernelChoice::kAuto));  // no tile is larger than 64 rows
}

TEST(KernelChoice, ForcedTransposedNeverTakesRowsKernel) {
  for (int32_t rows = 1; rows <= kMaxTileRows; ++rows)
    EXPECT_FALSE(use_rows_kernel(rows, KernelChoice::kTransposed)) << rows;
  EXPECT_FALSE(rows_kernel_for(1, 128, 1, KernelChoice::kTransposed));
}

TEST(KernelChoice, ForcedRowsTakesEveryTile) {
  for (int32_t rows = 1; rows <= kMaxTileRows; ++rows)
    EXPECT_TRUE(use_rows_kernel(rows, KernelChoice::kRows)) << rows;
  EXPECT_FALSE(use_rows_kernel(kMaxTileRows + 1, KernelChoice::kRows));
  EXPECT_TRUE(rows_kernel_for(1, 16, 1, KernelChoice::kRows));
}

TEST(KernelChoice, ShapesOfIssue10) {
  EXPECT_TRUE(rows_kernel_for(1, 64, 1));    // R = 64: one tile
  EXPECT_TRUE(rows_kernel_for(1, 128, 1));   // two tiles of 64 heads
  EXPECT_TRUE(rows_kernel_for(2, 64, 1));    // causal MTP: a tile per token
  EXPECT_TRUE(rows_kernel_for(4, 16, 1));    // 4 tokens × 16 heads
  EXPECT_TRUE(rows_kernel_for(3, 32, 1));    // tiles of 2 tokens × 32 heads (the second one half empty)
  EXPECT_TRUE(rows_kernel_for(1, 128, 2));   // h_kv = 2: 64 heads per KV head
  EXPECT_TRUE(rows_kernel_for(16, 128, 1));  // R = 2048
  EXPECT_FALSE(rows_kernel_for(1, 16, 1));   // the few-row shapes stay transposed
  EXPECT_FALSE(rows_kernel_for(2, 16, 1));
  EXPECT_FALSE(rows_kernel_for(1, 32, 1));
  EXPECT_FALSE(rows_kernel_for(1, 96, 1));   // two tiles of 48 heads
  EXPECT_FALSE(rows_kernel_for(5, 16, 1));   // two tiles of 3 tokens × 16 heads = 48 rows
  EXPECT_FALSE(rows_kernel_for(1, 128, 8));  // 16 heads per KV head
}

// The problem-level rule the launcher and the planner share: varlen q and FP8 caches stay on the transposed
// kernels, and the planner's per-segment cost F follows the kernel (plan.hpp fixed_cost_for).
TEST(KernelChoice, ProblemRuleAndItsFixedCost) {
  DecodeProblem problem;
  problem.h_q = 64;
  problem.s_q = 1;
  problem.h_kv = 1;
  EXPECT_TRUE(runs_rows_kernel(problem));
  EXPECT_EQ(fixed_cost_for(runs_rows_kernel(problem)), kRowsFixedCost);
  problem.h_q = 16;
  EXPECT_FALSE(runs_rows_kernel(problem));
  EXPECT_EQ(fixed_cost_for(runs_rows_kernel(problem)), kFixedCost);
  problem.h_q = 64;
  problem.varlen_q = true;
  EXPECT_FALSE(runs_rows_kernel(problem));
  problem.varlen_q = false;
  problem.kv_format = KvFormat::kFp8PerTensor;
  EXPECT_FALSE(runs_rows_kernel(problem));
  problem.kv_format = KvFormat::kDense;
  EXPECT_TRUE(runs_rows_kernel(problem, KernelChoice::kRows));
  EXPECT_FALSE(runs_rows_kernel(problem, KernelChoice::kTransposed));
}

}  // namespace
}  // namespace etap::decoding
