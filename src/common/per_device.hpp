// A value per CUDA device id for facts that cannot change while the process runs (a device's compute
// capability and SM count, a kernel's shared-memory opt-in), so that an eager call need not query them again.
// Lock-free: T{} means "not known yet", and threads that race to fill an entry store the same value.
#pragma once

#include <atomic>

namespace etap::common {

template <typename T>
class PerDevice {
 public:
  // Ids at or above this are never cached: every call queries them again.
  static constexpr int kDevices = 64;
  static_assert(std::atomic<T>::is_always_lock_free);

  // T{} when `device` is unknown or out of range.
  T get(int device) const { return in_range(device) ? values_[device].load(std::memory_order_acquire) : T{}; }
  void set(int device, T value) {
    if (in_range(device)) values_[device].store(value, std::memory_order_release);
  }

 private:
  static bool in_range(int device) { return device >= 0 && device < kDevices; }
  std::atomic<T> values_[kDevices] = {};
};

}  // namespace etap::common
