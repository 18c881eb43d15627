# Smoke tests of the etap command (label cpu; they pass with and without a GPU).
#
# This file has two roles: included by tests/CMakeLists.txt it registers the tests; run as
#   cmake -DEXPECT_EXIT=<code> -DEXPECT_OUTPUT=<regex> -P cli.cmake -- <command...>
# it runs the command and checks both its exit code and its output (CTest's PASS_REGULAR_EXPRESSION alone
# would ignore the exit code).
if(CMAKE_SCRIPT_MODE_FILE)
  set(command)
  set(after_separator FALSE)
  math(EXPR last "${CMAKE_ARGC} - 1")
  foreach(i RANGE ${last})
    if(after_separator)
      list(APPEND command "${CMAKE_ARGV${i}}")
    elseif(CMAKE_ARGV${i} STREQUAL "--")
      set(after_separator TRUE)
    endif()
  endforeach()
  execute_process(COMMAND ${command} RESULT_VARIABLE code OUTPUT_VARIABLE out ERROR_VARIABLE err)
  message("${out}${err}")
  if(NOT code STREQUAL EXPECT_EXIT)
    message(FATAL_ERROR "expected exit status ${EXPECT_EXIT}, got ${code}")
  endif()
  if(NOT "${out}${err}" MATCHES "${EXPECT_OUTPUT}")
    message(FATAL_ERROR "the output does not match: ${EXPECT_OUTPUT}")
  endif()
  return()
endif()

if(NOT TARGET etap_cli)
  return()
endif()

function(etap_cli_test name exit_code output_regex)
  add_test(NAME ${name}
           COMMAND ${CMAKE_COMMAND} -DEXPECT_EXIT=${exit_code} "-DEXPECT_OUTPUT=${output_regex}"
                   -P ${CMAKE_CURRENT_LIST_FILE} -- $<TARGET_FILE:etap_cli> ${ARGN})
  set_tests_properties(${name} PROPERTIES LABELS cpu)
endfunction()

etap_cli_test(cli_help 0 "Subcommands:.*run.*check.*bench.*devices" --help)
etap_cli_test(cli_version 0 "etap [0-9]+\\.[0-9]+\\.[0-9]+ \\(CUDA runtime" --version)
etap_cli_test(cli_devices 0 "CUDA runtime" devices)
etap_cli_test(cli_check_list 0 "[0-9]+ configs and 10 golden checks" check --list)
etap_cli_test(cli_check_quick_list 0 "20 configs and 10 golden checks" check --list --quick)
etap_cli_test(cli_unknown_flag 109 "--no-such-flag" run --no-such-flag)
# Without a compute-capability-9.0 GPU `etap run` says so and runs the CPU reference (exit 0); with one it
# decodes the paper's configuration and must match the reference.
etap_cli_test(cli_run 0 "(no compute-capability-9\\.0 GPU found \\(.+\\); running the CPU reference on a small problem instead.*checksum: )|(error vs reference: PASS.*decode: .* µs)" run)
if(TARGET etap_bench)
  etap_cli_test(cli_bench_help 0 "bench" bench --help)
else()
  etap_cli_test(cli_bench_not_built 1 "etap bench is not built \\(ETAP_BUILD_BENCH=OFF\\)" bench)
endif()
