// Which decode kernel runs a row tile: the transposed ETAP kernel (consumer.cuh) or the rows-on-M kernel
// (rows_consumer.cuh). Host-only, so that the rule is testable on the CPU.
#pragma once

#include <cstdint>
#include <etap/etap.hpp>

#include "decode/plan/row_tiles.hpp"

namespace etap::decoding {

// Row tiles of at least this many rows run on the rows-on-M kernel. The transposed kernel is built for few
// rows (its column softmax reduces across warps in smem every block); at a full tile of 64 rows FlashMLA's
// layout wins (issue 10: 0.55× FlashMLA at R ≥ 64 on an H200). The crossover below 64 is to be measured on
// the device; the rows-on-M kernel computes any tile of up to 64 rows (rows past the tile are zero padding).
inline constexpr int32_t kRowsKernelMinTileRows = kMaxTileRows;

// The rule below, or (benchmark A/B and crossover only, bench/etap_impls.cpp) always one of the kernels.
enum class KernelChoice : int32_t { kAuto = 0, kTransposed = 1, kRows = 2 };

constexpr bool use_rows_kernel(int32_t tile_rows, KernelChoice choice) {
  if (choice == KernelChoice::kRows) return tile_rows <= kMaxTileRows;
  return choice == KernelChoice::kAuto && tile_rows >= kRowsKernelMinTileRows && tile_rows <= kMaxTileRows;
}

// The kernel a problem runs on: variable query lengths (the rows-on-M kernel has no per-request row narrowing
// yet) and FP8 caches (no FP8 producer for it yet) run on the transposed kernels. The launcher picks the
// kernel by it and the planner its per-segment cost (plan.hpp, fixed_cost_for).
inline bool runs_rows_kernel(const DecodeProblem& problem, KernelChoice choice = KernelChoice::kAuto) {
  const RowTiling tiling = row_tiling(problem.s_q, problem.h_q, problem.h_kv);
  return !problem.varlen_q && problem.kv_format == KvFormat::kDense &&
         use_rows_kernel(tiling.tile_rows(), choice);
}

}  // namespace etap::decoding
