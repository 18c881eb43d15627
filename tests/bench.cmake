# Benchmark harness: its pure headers (bench/*.hpp) are unit-tested in tests/cpu/test_bench_*.cpp (CTest names
# Bench*, registered by gtest_discover_tests), and bench/plot.py renders tests/data/bench_sample.json
# (synthetic numbers) and a stored report into PNGs.
find_package(nlohmann_json 3 REQUIRED)
target_include_directories(etap_cpu_tests PRIVATE ${PROJECT_SOURCE_DIR})
target_link_libraries(etap_cpu_tests PRIVATE nlohmann_json::nlohmann_json)

# Debian's python3-matplotlib lives in /usr/bin/python3; where it is missing the script prints "SKIPPED: <why>"
# and exits 77 (the regular expression puts the skip, with its reason, in CTest's log as well).
find_program(ETAP_PYTHON3 NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH)
if(NOT ETAP_PYTHON3)
  find_program(ETAP_PYTHON3 NAMES python3)
endif()
if(ETAP_PYTHON3)
  add_test(NAME bench_plot
           COMMAND ${ETAP_PYTHON3} ${PROJECT_SOURCE_DIR}/bench/test_plot.py ${CMAKE_CURRENT_BINARY_DIR}/bench_plot
                   ${CMAKE_CURRENT_SOURCE_DIR}/data/bench_sample.json
                   ${PROJECT_SOURCE_DIR}/bench/results/h200-all-2026-11-28.json)
  set_tests_properties(bench_plot PROPERTIES LABELS cpu SKIP_RETURN_CODE 77 SKIP_REGULAR_EXPRESSION "SKIPPED: "
                                               ENVIRONMENT MPLBACKEND=Agg)
else()
  message(STATUS "python3 not found: the bench_plot test is not registered")
endif()
