# CLI11 (header-only), the command-line parser of the etap command, as the target etap_cli11. Looked for in
# this order:
#   1. -DETAP_CLI11_INCLUDE_DIR=<directory holding CLI/CLI.hpp>;
#   2. an installed CMake package (Debian/Ubuntu: apt-get install libcli11-dev);
#   3. a copy of the headers in ETAP_CLI11_BUNDLED_DIR (default .deps/CLI11/include), for machines without
#      the package (the device machine: `mkdir -p .deps/CLI11/include && cp -r /usr/include/CLI .deps/CLI11/include/`).
# Not found: a configure error that says how to get it, or how to build without the command line.
if(TARGET etap_cli11)
  return()
endif()
set(ETAP_CLI11_INCLUDE_DIR "" CACHE PATH "Directory holding CLI/CLI.hpp (overrides the CLI11 package)")
set(ETAP_CLI11_BUNDLED_DIR ${PROJECT_SOURCE_DIR}/.deps/CLI11/include
    CACHE PATH "Where a copy of the CLI11 headers is looked for when the package is not installed")
add_library(etap_cli11 INTERFACE)
if(ETAP_CLI11_INCLUDE_DIR)
  if(NOT EXISTS ${ETAP_CLI11_INCLUDE_DIR}/CLI/CLI.hpp)
    message(FATAL_ERROR "ETAP_CLI11_INCLUDE_DIR=${ETAP_CLI11_INCLUDE_DIR} does not contain CLI/CLI.hpp")
  endif()
  target_include_directories(etap_cli11 SYSTEM INTERFACE ${ETAP_CLI11_INCLUDE_DIR})
  message(STATUS "CLI11: ${ETAP_CLI11_INCLUDE_DIR} (ETAP_CLI11_INCLUDE_DIR)")
  return()
endif()
find_package(CLI11 2.1 CONFIG QUIET)
if(CLI11_FOUND)
  target_link_libraries(etap_cli11 INTERFACE CLI11::CLI11)
  message(STATUS "CLI11: package ${CLI11_VERSION} (${CLI11_DIR})")
  set(ETAP_CLI11_FROM_PACKAGE ON CACHE INTERNAL "CLI11 came from its installed CMake package")
elseif(EXISTS ${ETAP_CLI11_BUNDLED_DIR}/CLI/CLI.hpp)
  target_include_directories(etap_cli11 SYSTEM INTERFACE ${ETAP_CLI11_BUNDLED_DIR})
  message(STATUS "CLI11: ${ETAP_CLI11_BUNDLED_DIR} (copied headers)")
else()
  message(FATAL_ERROR
    "The etap command needs CLI11 (header-only), which was not found. Install it (Debian/Ubuntu: "
    "apt-get install libcli11-dev), or pass -DETAP_CLI11_INCLUDE_DIR=<directory holding CLI/CLI.hpp>, "
    "or copy the headers to ${ETAP_CLI11_BUNDLED_DIR}/CLI, or configure with -DETAP_BUILD_TOOLS=OFF.")
endif()
