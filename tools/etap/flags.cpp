#include "flags.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace etap::cli {

std::string unwritable_reason(const std::string& path) {
  namespace fs = std::filesystem;
  const fs::path file(path);
  std::error_code ec;
  if (fs::is_directory(file, ec)) return "cannot write " + path + ": it is a directory";
  if (fs::exists(file, ec)) {
    if (access(path.c_str(), W_OK) == 0) return {};
    return "cannot write " + path + ": " + std::strerror(errno);
  }
  const fs::path dir = file.has_parent_path() ? file.parent_path() : fs::path(".");
  if (!fs::is_directory(dir, ec))
    return "cannot write " + path + ": the directory " + dir.string() + " does not exist";
  if (access(dir.c_str(), W_OK) != 0) return "cannot write " + path + ": " + std::strerror(errno);
  return {};
}

}  // namespace etap::cli
