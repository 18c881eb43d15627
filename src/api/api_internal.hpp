// Helpers shared by the API translation units (src/api); not installed.
#pragma once

#include <cstddef>
#include <etap/etap.hpp>
#include <string>

#include "common/status.hpp"
#include "decode/plan/plan.hpp"

namespace etap::api {

using common::str;

// Shapes, dtypes and supported configurations of a problem, independent of any pointer or stride.
Status check_problem(const DecodeProblem& problem);

// Options.num_sms, or the SM count of the current device when it is 0.
Status resolve_num_sms(const Options& options, int* num_sms);

// Buffer sizes of a problem; fails when the problem is invalid or unsupported, or when num_sms = 0 and no
// device can be queried.
struct BufferSizes {
  decoding::PlanParams params;
  std::size_t plan_bytes;
  std::size_t workspace_bytes;
};
Status buffer_sizes(const DecodeProblem& problem, const Options& options, BufferSizes* sizes);

// "0x7f00…" for messages that name an address.
std::string hex_address(const void* pointer);

}  // namespace etap::api
