# Tests of the etap command (label cpu). Tests that need a compute-capability-9.0 GPU are reported as
# skipped, with the command's reason, where there is none.
#
# This file has two roles: included by tests/CMakeLists.txt it registers the tests; run as
#   cmake -DEXPECT_EXIT=<code> -DEXPECT_OUTPUT=<regex> [-DREJECT_OUTPUT=<regex>] [-DSKIP_EXIT=<code>]
#         [-DEXPECT_FILE=<path> -DEXPECT_FILE_CONTENT=<regex>] [-DINSTALL_FROM=<build dir> -DINSTALL_TO=<prefix>]
#         -P cli.cmake -- <command...>
# it (installs the build tree first, when asked, and) runs the command and checks its exit code, its output
# and the file it should write (CTest's PASS_REGULAR_EXPRESSION alone would ignore the exit code). An exit
# code equal to SKIP_EXIT prints "etap_cli_test: SKIPPED" (the SKIP_REGULAR_EXPRESSION of such tests).
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
  if(DEFINED INSTALL_TO)
    file(REMOVE_RECURSE ${INSTALL_TO})
    execute_process(COMMAND ${CMAKE_COMMAND} --install ${INSTALL_FROM} --prefix ${INSTALL_TO}
                    RESULT_VARIABLE code OUTPUT_QUIET)
    if(NOT code EQUAL 0)
      message(FATAL_ERROR "cmake --install ${INSTALL_FROM} --prefix ${INSTALL_TO} failed")
    endif()
  endif()
  if(DEFINED EXPECT_FILE)
    file(REMOVE ${EXPECT_FILE})
  endif()
  execute_process(COMMAND ${command} RESULT_VARIABLE code OUTPUT_VARIABLE out ERROR_VARIABLE err)
  message("${out}${err}")
  if(DEFINED SKIP_EXIT AND code STREQUAL SKIP_EXIT)
    message("etap_cli_test: SKIPPED (exit status ${code}; the reason is above)")
    return()
  endif()
  if(NOT code STREQUAL EXPECT_EXIT)
    message(FATAL_ERROR "expected exit status ${EXPECT_EXIT}, got ${code}")
  endif()
  if(NOT "${out}${err}" MATCHES "${EXPECT_OUTPUT}")
    message(FATAL_ERROR "the output does not match: ${EXPECT_OUTPUT}")
  endif()
  if(DEFINED REJECT_OUTPUT AND "${out}${err}" MATCHES "${REJECT_OUTPUT}")
    message(FATAL_ERROR "the output matches what it must not: ${REJECT_OUTPUT}")
  endif()
  if(DEFINED EXPECT_FILE)
    if(NOT EXISTS ${EXPECT_FILE})
      message(FATAL_ERROR "${EXPECT_FILE} was not written")
    endif()
    file(READ ${EXPECT_FILE} content)
    if(NOT content MATCHES "${EXPECT_FILE_CONTENT}")
      message(FATAL_ERROR "${EXPECT_FILE} does not match: ${EXPECT_FILE_CONTENT}")
    endif()
  endif()
  return()
endif()

if(NOT TARGET etap_cli)
  return()
endif()

# etap_cli_test(<name> <exit code> <output regex> [REJECT <regex>] [SKIP_EXIT <code>] [NO_GPU]
#               [FILE <path> <content regex>] [INSTALLED] ARGS <etap arguments...>)
# NO_GPU hides every GPU (CUDA_VISIBLE_DEVICES=""), so the test means the same on every machine. INSTALLED
# runs the etap of `cmake --install` into a fresh prefix instead of the build tree's.
function(etap_cli_test name exit_code output_regex)
  cmake_parse_arguments(PARSE_ARGV 3 opt "NO_GPU;INSTALLED" "REJECT;SKIP_EXIT" "FILE;ARGS")
  set(defs -DEXPECT_EXIT=${exit_code} "-DEXPECT_OUTPUT=${output_regex}")
  if(DEFINED opt_REJECT)
    list(APPEND defs "-DREJECT_OUTPUT=${opt_REJECT}")
  endif()
  if(DEFINED opt_SKIP_EXIT)
    list(APPEND defs -DSKIP_EXIT=${opt_SKIP_EXIT})
  endif()
  if(opt_FILE)
    list(GET opt_FILE 0 file_path)
    list(GET opt_FILE 1 file_regex)
    list(APPEND defs -DEXPECT_FILE=${file_path} "-DEXPECT_FILE_CONTENT=${file_regex}")
  endif()
  set(program $<TARGET_FILE:etap_cli>)
  if(opt_INSTALLED)
    set(prefix ${CMAKE_CURRENT_BINARY_DIR}/${name}-prefix)
    list(APPEND defs -DINSTALL_FROM=${PROJECT_BINARY_DIR} -DINSTALL_TO=${prefix})
    set(program ${prefix}/${CMAKE_INSTALL_BINDIR}/etap)
  endif()
  add_test(NAME ${name} COMMAND ${CMAKE_COMMAND} ${defs} -P ${CMAKE_CURRENT_LIST_FILE} -- ${program} ${opt_ARGS})
  set_tests_properties(${name} PROPERTIES LABELS cpu SKIP_REGULAR_EXPRESSION "etap_cli_test: SKIPPED")
  if(opt_NO_GPU)
    set_tests_properties(${name} PROPERTIES ENVIRONMENT "CUDA_VISIBLE_DEVICES=")
  endif()
endfunction()

set(no_gpu_text "no compute-capability-9\\.0 GPU found \\(.+\\)")
set(not_in_range "not in range 1 to [0-9]+")

etap_cli_test(cli_help 0 "Subcommands:.*run.*check.*bench.*devices.*Exit status:.*3 +an output file" ARGS --help)
etap_cli_test(cli_version 0 "etap [0-9]+\\.[0-9]+\\.[0-9]+ \\(CUDA runtime" ARGS --version)
etap_cli_test(cli_unknown_flag 109 "--no-such-flag" ARGS run --no-such-flag)

# devices: what it prints without a GPU (every machine, GPUs hidden), and the Hopper line (skipped without).
etap_cli_test(cli_devices_none 0
  "CUDA runtime [0-9.]+, driver [0-9.a-z]+\nno CUDA device \\(.+\\); etap needs a compute-capability-9\\.0 GPU"
  NO_GPU ARGS devices)
etap_cli_test(cli_devices 0 "GPU 0: .+ compute capability 9\\.0 +[0-9]+ SMs .* supported\n" REJECT "not supported"
  SKIP_EXIT 2 ARGS devices --require-gpu)

# run: the CPU path honours every shape flag and validates like the library; the GPU path must match the
# reference (skipped without a GPU).
etap_cli_test(cli_run_cpu 0
  "problem: b=3 s_q=2 h_q=8 \\(R=16\\) s_k=200 d=576/512 page=64 fp16 causal scale=0\\.125 lse=log2\nCPU reference \\(fp64, 1 threads\\).*checksum: sum\\(out\\)=[-0-9]"
  ARGS run --cpu --batch 3 --seqlen 200 --h-q 8 --s-q 2 --causal --dtype fp16 --scale 0.125 --lse-base 2
       --threads 1)
etap_cli_test(cli_run_cpu_varlen 0 "problem: b=4 s_q=1 h_q=16 \\(R=16\\) s_k=varlen mean [0-9]+ \\(requested 300\\)"
  ARGS run --cpu --batch 4 --varlen 300)
etap_cli_test(cli_run_seqlen_suffix 0 "problem: b=1 s_q=1 h_q=16 \\(R=16\\) s_k=1024 " ARGS run --cpu -b 1 -s 1K)
etap_cli_test(cli_run_falls_back_without_gpu 0
  "${no_gpu_text}; running the CPU reference instead\nproblem: b=2 s_q=1 h_q=16 \\(R=16\\) s_k=100 "
  NO_GPU ARGS run --batch 2 --seqlen 100)
etap_cli_test(cli_run_rows_refused 4 "s_q.+h_q = 9216 query rows per request; this build supports up to 4096"
  ARGS run --cpu --s-q 9 --h-q 1024)
etap_cli_test(cli_run_scale_nan_refused 4 "softmax_scale must be a finite positive number; got nan"
  ARGS run --cpu --scale nan)
etap_cli_test(cli_run_batch_zero 105 "--batch: Value 0 ${not_in_range}" ARGS run --batch 0)
etap_cli_test(cli_run_json 0 "wrote .*cli_run\\.json"
  FILE ${CMAKE_CURRENT_BINARY_DIR}/cli_run.json "\"checksum\": \\{.*\"problem\": \\{.*\"batch\": 2"
  ARGS run --cpu --batch 2 --seqlen 100 --json ${CMAKE_CURRENT_BINARY_DIR}/cli_run.json)
etap_cli_test(cli_run_json_unwritable 3 "cannot write .*/no-such-dir/run\\.json"
  ARGS run --cpu --json /no-such-dir/run.json)
etap_cli_test(cli_run_gpu 0 "error vs reference: PASS.*decode: .* µs.*plan: " SKIP_EXIT 2 ARGS run --require-gpu)

# check
etap_cli_test(cli_check_list 0 "[0-9]+ configs and 10 golden checks" ARGS check --list)
etap_cli_test(cli_check_quick_list 0 "29 configs and 10 golden checks" ARGS check --list --quick)
etap_cli_test(cli_check_json_unwritable 3 "cannot write .*/no-such-dir/check\\.json"
  ARGS check --quick --json /no-such-dir/check.json)
etap_cli_test(cli_check_no_gpu 2 "etap check: ${no_gpu_text}" NO_GPU ARGS check --quick)
# The installed etap finds the installed golden cases.
etap_cli_test(cli_installed_golden_dir 0 "golden cases: [^\n]*/cli_installed_golden_dir-prefix/share/etap/golden \\(5 cases\\)"
  INSTALLED ARGS check --list --quick)

if(TARGET etap_bench)
  etap_cli_test(cli_bench_help 0
    "--sweep.*-s,--seqlen.*tokens; K = 1024, M = 1048576.*Sweeps:\n +paper .*\n +heads .*\n +batch .*\n +varlen .*\n +all "
    ARGS bench --help)
  etap_cli_test(cli_bench_list 0
    "custom: b=2 s_k=8192 h_q=16 s_q=2 causal\ncustom: b=2 s_k=1048576 h_q=16 s_q=2 causal\n"
    ARGS bench --list -b 2 -s 8K,1M --h-q 16 --s-q 2 --causal --iters 5)
  etap_cli_test(cli_bench_list_varlen 0 "custom: b=16 s_k~4096 h_q=16 s_q=1\n" ARGS bench --list --varlen 4K)
  etap_cli_test(cli_bench_seqlen_units 105 "--seqlen: .*4096kb" ARGS bench --list --seqlen 4096kb)
  etap_cli_test(cli_bench_batch_zero 105 "--batch: Value 0 ${not_in_range}" REJECT "[0-9]{20}"
    ARGS bench --list --batch 0)
  etap_cli_test(cli_bench_json_unwritable 3 "cannot write .*/no-such-dir/bench\\.json"
    ARGS bench --json /no-such-dir/bench.json)
else()
  etap_cli_test(cli_bench_not_built 1 "etap bench is not built \\(ETAP_BUILD_BENCH=OFF\\)" ARGS bench)
endif()

# tools/gpu-check.sh configures a build on its own (the device machine has CLI11 in .deps, this one the
# Debian package): its `configure` step must work wherever the README's build does. Where the package is
# installed, the test hides .deps, so that it is the package that must be found.
find_program(ETAP_BASH bash)
if(ETAP_BASH)
  set(hide_deps "")
  if(ETAP_CLI11_FROM_PACKAGE)
    set(hide_deps "-DETAP_CLI11_BUNDLED_DIR=${CMAKE_CURRENT_BINARY_DIR}/no-deps")
  endif()
  add_test(NAME gpu_check_configure
           COMMAND ${CMAKE_COMMAND} -E env OUT=${CMAKE_CURRENT_BINARY_DIR}/gpu-check-out
                   ETAP_BUILD_DIR=${CMAKE_CURRENT_BINARY_DIR}/gpu-check-build "ETAP_CONFIGURE_ARGS=${hide_deps}"
                   ${ETAP_BASH} ${PROJECT_SOURCE_DIR}/tools/gpu-check.sh configure)
  set_tests_properties(gpu_check_configure PROPERTIES LABELS cpu PASS_REGULAR_EXPRESSION "configure +ok"
                                                      FAIL_REGULAR_EXPRESSION "configure +FAIL")
endif()
