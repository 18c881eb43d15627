// The head dims of the timeline tool's probed kernels (probed_*.cu): DimsMla (576 / 512) under another name,
// so that the probed instantiations of the library's kernel and launch templates (kernel_launch.cuh,
// rows_launch.cuh) get symbols of their own and never replace or clash with the shipped ones, which the tool
// links too (etap_internal: the planner, make_params, combine and the comparison run).
#pragma once

#include "decode/kernel/config.hpp"

namespace etap::bench::timeline {

struct ProbedDimsMla : decoding::DimsMla {};

}  // namespace etap::bench::timeline
