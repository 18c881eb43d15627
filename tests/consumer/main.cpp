// A downstream project of the installed etap package: validation messages and buffer sizes work without
// a GPU. readme_example.cpp (README.md's C++ example) is compiled and linked alongside.
#include <cstdio>
#include <etap/etap.hpp>

int main() {
  etap::DecodeArgs bad;  // shapes filled in, every pointer left null
  bad.problem.batch = 4;
  bad.problem.h_q = 16;
  bad.problem.num_pages = 64;
  bad.problem.max_pages_per_seq = 16;
  bad.softmax_scale = 0.1352f;
  const etap::Status status = etap::validate(bad);
  std::printf("validate(args with null pointers): %s: %s\n", etap::to_string(status.code()),
              status.message().c_str());

  etap::Options options;
  options.num_sms = 132;  // explicit: no device is needed to size the buffers
  const std::size_t plan_size = etap::plan_bytes(bad.problem, options);
  const std::size_t workspace_size = etap::workspace_bytes(bad.problem, options);
  std::printf("plan_bytes=%zu workspace_bytes=%zu\n", plan_size, workspace_size);

  const bool ok = !status.ok() && !status.message().empty() && plan_size > 0 && workspace_size > 0;
  std::printf("%s\n", ok ? "etap consumer: OK" : "etap consumer: unexpected result");
  return ok ? 0 : 1;
}
