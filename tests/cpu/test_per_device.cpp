// The per-device table behind the cached device queries (common/per_device.hpp) and the device check's
// answers, which must not change when they come from the table (second and later calls).
#include <gtest/gtest.h>

#include <etap/etap.hpp>
#include <thread>
#include <vector>

#include "common/per_device.hpp"
#include "cpu/test_util.hpp"

namespace etap {
namespace {

using common::PerDevice;

TEST(PerDevice, UnknownUntilSet) {
  PerDevice<int> table;
  EXPECT_EQ(table.get(0), 0);
  table.set(3, 132);
  EXPECT_EQ(table.get(3), 132);
  EXPECT_EQ(table.get(2), 0);
  EXPECT_EQ(table.get(4), 0);
}

TEST(PerDevice, IdsOutsideTheTableAreNeverKept) {
  PerDevice<bool> table;
  for (const int device : {-1, PerDevice<bool>::kDevices, 1 << 20}) {
    table.set(device, true);
    EXPECT_FALSE(table.get(device)) << device;
  }
  table.set(PerDevice<bool>::kDevices - 1, true);
  EXPECT_TRUE(table.get(PerDevice<bool>::kDevices - 1));
}

TEST(PerDevice, ThreadsFillingTheSameEntriesAgree) {
  PerDevice<int> table;
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&] {
      for (int device = 0; device < PerDevice<int>::kDevices; ++device) {
        if (table.get(device) == 0) table.set(device, 100 + device);
        EXPECT_EQ(table.get(device), 100 + device);
      }
    });
  for (auto& thread : threads) thread.join();
  for (int device = 0; device < PerDevice<int>::kDevices; ++device)
    EXPECT_EQ(table.get(device), 100 + device);
}

// check_device keeps only successes: repeated calls give the same code and message, on any machine.
TEST(CheckDevice, RepeatedCallsGiveTheSameAnswer) {
  for (const int device : {0, 1, -1, 1000}) {
    const Status first = check_device(device);
    for (int call = 0; call < 3; ++call) {
      const Status again = check_device(device);
      EXPECT_EQ(again.code(), first.code()) << device;
      EXPECT_EQ(again.message(), first.message()) << device;
    }
  }
}

TEST(BufferSizes, RepeatedCallsGiveTheSameSize) {
  const DecodeProblem p = ::etap::test::with_test_shape(DecodeProblem{}, 4, 1, 16);
  const std::size_t first = plan_bytes(p, {});  // 0 on a machine without a device
  for (int call = 0; call < 3; ++call) EXPECT_EQ(plan_bytes(p, {}), first);
}

}  // namespace
}  // namespace etap
