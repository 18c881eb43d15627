// What happened to one implementation on one configuration (shared by the harness and the report).
#pragma once

#include <string>

namespace etap::bench {

enum class Outcome {
  kOk,
  kFailed,        // wrong results in the correctness check: not timed
  kNotAvailable,  // not built into this binary
  kUnsupported,   // this configuration is outside what the implementation covers
  kError,         // a CUDA or API error while running
  kSkipped,       // not run
};

// clang-format off
inline const char* to_string(Outcome o) {
  switch (o) {
    case Outcome::kOk: return "ok";
    case Outcome::kFailed: return "FAILED";
    case Outcome::kNotAvailable: return "not available";
    case Outcome::kUnsupported: return "unsupported";
    case Outcome::kError: return "error";
    case Outcome::kSkipped: return "skipped";
  }
  return "?";
}
// clang-format on

inline Outcome outcome_from_string(const std::string& s) {
  for (Outcome o : {Outcome::kOk, Outcome::kFailed, Outcome::kNotAvailable, Outcome::kUnsupported,
                    Outcome::kError, Outcome::kSkipped})
    if (s == to_string(o)) return o;
  return Outcome::kError;
}

}  // namespace etap::bench
