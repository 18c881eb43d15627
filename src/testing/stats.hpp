// Statistics of timing samples, shared by the etap command and the benchmark. Pure host code.
#pragma once

#include <algorithm>
#include <limits>
#include <vector>

namespace etap::testing {

// Median of an even count is the mean of the two middle samples; NaN for no samples.
inline double median(std::vector<double> samples) {
  if (samples.empty()) return std::numeric_limits<double>::quiet_NaN();
  const std::size_t mid = samples.size() / 2;
  std::nth_element(samples.begin(), samples.begin() + mid, samples.end());
  const double upper = samples[mid];
  if (samples.size() % 2 == 1) return upper;
  const double lower = *std::max_element(samples.begin(), samples.begin() + mid);
  return 0.5 * (lower + upper);
}

}  // namespace etap::testing
