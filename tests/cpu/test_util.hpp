// Small helpers shared by the CPU tests of the API boundary.
#pragma once

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

}  // namespace etap::test
