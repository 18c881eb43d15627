// Building error messages and passing failures up: shared by the API (src/api) and the decode path.
#pragma once

#include <etap/etap.hpp>
#include <sstream>
#include <string>

#define ETAP_RETURN_IF_ERROR(expr)               \
  do {                                           \
    ::etap::Status etap_status_ = (expr);        \
    if (!etap_status_.ok()) return etap_status_; \
  } while (0)

namespace etap::common {

// Concatenates the streamed form of each part: str("h_q (", h_q, ") must be ...").
template <typename... Parts>
std::string str(const Parts&... parts) {
  std::ostringstream out;
  (out << ... << parts);
  return out.str();
}

}  // namespace etap::common
