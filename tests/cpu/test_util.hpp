// Small helpers shared by the CPU tests of the API boundary.
#pragma once

#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <string>

namespace etap::test {

// Passes when `text` contains `part`; the failure message shows both.
inline ::testing::AssertionResult Contains(const std::string& text, const std::string& part) {
  if (text.find(part) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "\"" << text << "\" does not contain \"" << part << "\"";
}

// A pointer value for validation tests that never dereference it.
template <typename T>
T* fake_address(std::uintptr_t address) {
  return reinterpret_cast<T*>(address);
}

// Whether any CUDA device is visible (tests of the no-device paths skip where one is); clears the error a
// failed query leaves behind.
inline bool has_cuda_device() {
  int count = 0;
  const bool found = cudaGetDeviceCount(&count) == cudaSuccess && count > 0;
  cudaGetLastError();
  return found;
}

// The problem shape the API tests start from (100 pages, 16 block-table columns), for etap::DecodeProblem
// and the C API's etap_problem alike.
template <typename Problem>
Problem with_test_shape(Problem p, int32_t batch, int32_t s_q, int32_t h_q) {
  p.batch = batch;
  p.s_q = s_q;
  p.h_q = h_q;
  p.num_pages = 100;
  p.max_pages_per_seq = 16;
  return p;
}

}  // namespace etap::test
