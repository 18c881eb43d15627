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

# etap_cli_test(<name> <exit code> <output regex> [REJECT <regex>] [SKIP_EXIT <code>] [NO_GPU] [GPU]
#               [FILE <path> <content regex>] [INSTALLED] ARGS <etap arguments...>)
# NO_GPU hides every GPU (CUDA_VISIBLE_DEVICES=""), so the test means the same on every machine. GPU adds
# the label gpu (ctest -L gpu runs it on the device machine; elsewhere it skips with SKIP_EXIT 2). INSTALLED
# runs the etap of `cmake --install` into a fresh prefix instead of the build tree's.
function(etap_cli_test name exit_code output_regex)
  cmake_parse_arguments(PARSE_ARGV 3 opt "NO_GPU;GPU;INSTALLED" "REJECT;SKIP_EXIT" "FILE;ARGS")
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
  set(labels cpu)
  if(opt_GPU)
    list(APPEND labels gpu)
  endif()
  set_tests_properties(${name} PROPERTIES LABELS "${labels}" SKIP_REGULAR_EXPRESSION "etap_cli_test: SKIPPED")
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
etap_cli_test(cli_run_cpu_q_lens 0 "problem: b=4 s_q=3 h_q=16 q_lens=\\[2 0 3 1\\] \\(R=48\\) s_k=300 .*causal"
  ARGS run --cpu --batch 4 --seqlen 300 --q-lens 2,0,3,1 --causal --threads 1)
etap_cli_test(cli_run_cpu_varlen_q 0 "problem: b=5 s_q=4 h_q=64 q_lens=\\[[0-4 ]+\\] \\(R=256\\)"
  ARGS run --cpu --batch 5 --seqlen 200 --h-q 64 --varlen-q 4 --threads 1)
etap_cli_test(cli_run_q_lens_count 4 "q_lens has 3 entries for batch 2" ARGS run --cpu -b 2 --q-lens 1,2,3)
etap_cli_test(cli_run_q_lens_rows 4 "s_q·h_q = 5120 query rows" ARGS run --cpu -b 2 --h-q 128 --q-lens 1,40)
etap_cli_test(cli_run_seqlen_suffix 0 "problem: b=1 s_q=1 h_q=16 \\(R=16\\) s_k=1024 " ARGS run --cpu -b 1 -s 1K)
etap_cli_test(cli_run_falls_back_without_gpu 0
  "${no_gpu_text}; running the CPU reference instead\nproblem: b=2 s_q=1 h_q=16 \\(R=16\\) s_k=100 "
  NO_GPU ARGS run --batch 2 --seqlen 100)
# Issue 11's FP8 KV cache: the CPU reference runs the FP8 problem (the library validates it; on a GPU the FP8
# kernels run it).
etap_cli_test(cli_run_cpu_fp8 0
  "problem: b=2 s_q=1 h_q=16 \\(R=16\\) s_k=100 d=576/512 page=64 bf16 kv=fp8_per_tensor .*\nCPU reference \\(fp64, 1 threads\\).*checksum: sum\\(out\\)=[-0-9]"
  ARGS run --cpu --batch 2 --seqlen 100 --kv-format fp8 --threads 1)
etap_cli_test(cli_run_cpu_fp8_v32 0
  "d=576/512 page=64 bf16 kv=fp8_deepseek_v32 .*checksum: sum\\(out\\)=[-0-9]"
  ARGS run --cpu --batch 2 --seqlen 100 --kv-format fp8-v32 --threads 1)
etap_cli_test(cli_run_fp8_falls_back_without_gpu 0 "running the CPU reference instead\n.*kv=fp8_per_tensor .*checksum: "
  NO_GPU ARGS run --batch 1 --seqlen 64 --kv-format fp8)
etap_cli_test(cli_run_fp8_v32_head_dims_refused 4 "fp8_deepseek_v32 (needs|fixes) d_qk = 576"
  ARGS run --cpu --kv-format fp8-v32 --head-dims 320/256)
etap_cli_test(cli_run_kv_format_malformed 105 "--kv-format: 'fp4' is not a KV cache format: dense, fp8 or fp8-v32"
  ARGS run --cpu --kv-format fp4)
etap_cli_test(cli_run_rows_refused 4 "s_q.+h_q = 9216 query rows per request; this build supports up to 4096"
  ARGS run --cpu --s-q 9 --h-q 1024)
# Issue 10's shapes: h_kv > 1, any page size, head dims 320/256 and 512/512, up to 4096 query rows.
etap_cli_test(cli_run_cpu_shape_flags 0
  "problem: b=2 s_q=1 h_q=32 h_kv=2 \\(R=16\\) s_k=100 d=320/256 page=16 bf16 .*\nCPU reference \\(fp64, 1 threads\\)"
  ARGS run --cpu --batch 2 --seqlen 100 --h-q 32 --h-kv 2 --page-size 16 --head-dims 320/256 --threads 1)
etap_cli_test(cli_run_cpu_page_one_many_rows 0
  "problem: b=1 s_q=4 h_q=128 \\(R=512\\) s_k=50 d=512/512 page=1 fp16 causal .*\nchecksum: sum\\(out\\)=[-0-9]"
  ARGS run --cpu -b 1 -s 50 --s-q 4 --h-q 128 --page-size 1 --head-dims 512/512 --dtype fp16 --causal --threads 1)
etap_cli_test(cli_run_head_dims_refused 4
  "head dims d_qk=128/d_v=128 are not supported; supported: 576/512, 512/512 and 320/256"
  ARGS run --cpu --head-dims 128/128)
etap_cli_test(cli_run_head_dims_malformed 105 "--head-dims: '576' is not D_QK/D_V" ARGS run --cpu --head-dims 576)
etap_cli_test(cli_run_h_kv_not_dividing 4 "h_q a positive multiple of h_kv" ARGS run --cpu --h-q 16 --h-kv 3)
etap_cli_test(cli_run_s_q_max 105 "--s-q: Value 1025 ${not_in_range}" ARGS run --cpu --s-q 1025)
etap_cli_test(cli_run_page_size_zero 105 "--page-size: Value 0 ${not_in_range}" ARGS run --cpu --page-size 0)
etap_cli_test(cli_run_json_shape 0 "wrote .*cli_run_shape\\.json"
  FILE ${CMAKE_CURRENT_BINARY_DIR}/cli_run_shape.json
       "\"problem\": \\{.*\"d_qk\": 576,.*\"d_v\": 512,.*\"h_kv\": 2,.*\"h_q\": 32,.*\"page_size\": 1,"
  ARGS run --cpu --batch 2 --seqlen 40 --h-q 32 --h-kv 2 --page-size 1 --threads 1
       --json ${CMAKE_CURRENT_BINARY_DIR}/cli_run_shape.json)
etap_cli_test(cli_run_scale_nan_refused 4 "softmax_scale must be a finite positive number; got nan"
  ARGS run --cpu --scale nan)
etap_cli_test(cli_run_batch_zero 105 "--batch: Value 0 ${not_in_range}" ARGS run --batch 0)
etap_cli_test(cli_run_json 0 "wrote .*cli_run\\.json"
  FILE ${CMAKE_CURRENT_BINARY_DIR}/cli_run.json "\"checksum\": \\{.*\"problem\": \\{.*\"batch\": 2"
  ARGS run --cpu --batch 2 --seqlen 100 --json ${CMAKE_CURRENT_BINARY_DIR}/cli_run.json)
etap_cli_test(cli_run_json_unwritable 3 "cannot write .*/no-such-dir/run\\.json"
  ARGS run --cpu --json /no-such-dir/run.json)
etap_cli_test(cli_run_gpu 0 "error vs reference: PASS.*decode: .* µs.*plan: " SKIP_EXIT 2 ARGS run --require-gpu)
# FP8 caches of both formats on the GPU against the CPU reference over the dequantised cache (skipped without one).
etap_cli_test(cli_run_gpu_fp8 0 "error vs reference: PASS" SKIP_EXIT 2 GPU
  ARGS run --require-gpu --iters 3 --warmup 1 -b 2 -s 300 --kv-format fp8)
etap_cli_test(cli_run_gpu_fp8_v32 0 "error vs reference: PASS" SKIP_EXIT 2 GPU
  ARGS run --require-gpu --iters 3 --warmup 1 -b 2 -s 300 --kv-format fp8-v32)
# Issue 10's shapes on the GPU against the CPU reference (skipped without one).
set(gpu_run_args --require-gpu --iters 3 --warmup 1)
etap_cli_test(cli_run_gpu_rows 0 "R=256\\).*error vs reference: PASS" SKIP_EXIT 2 GPU
  ARGS run ${gpu_run_args} -b 4 -s 2000 --h-q 128 --s-q 2 --causal)
etap_cli_test(cli_run_gpu_page_one 0 "page=1 .*error vs reference: PASS" SKIP_EXIT 2 GPU
  ARGS run ${gpu_run_args} -b 4 --varlen 3000 --h-q 16 --page-size 1)
etap_cli_test(cli_run_gpu_h_kv_page_dims 0 "h_kv=2 \\(R=32\\).*d=320/256 page=48 fp16.*error vs reference: PASS"
  SKIP_EXIT 2 GPU ARGS run ${gpu_run_args} -b 3 -s 1000 --h-q 64 --h-kv 2 --page-size 48 --head-dims 320/256
                       --dtype fp16)
etap_cli_test(cli_run_gpu_varlen_q 0 "q_lens=.*R=256\\).*error vs reference: PASS" SKIP_EXIT 2 GPU
  ARGS run ${gpu_run_args} -b 16 --varlen 2000 --h-q 64 --varlen-q 4 --causal)
etap_cli_test(cli_run_gpu_q_lens_gather 0 "q_lens=\\[2 0 1 2\\].*page=1 .*error vs reference: PASS" SKIP_EXIT 2 GPU
  ARGS run ${gpu_run_args} -b 4 -s 1000 --h-q 32 --h-kv 2 --q-lens 2,0,1,2 --page-size 1 --causal)
etap_cli_test(cli_run_gpu_latent_dims 0 "d=512/512 page=16 .*error vs reference: PASS" SKIP_EXIT 2 GPU
  ARGS run ${gpu_run_args} -b 8 -s 700 --h-q 32 --s-q 3 --causal --page-size 16 --head-dims 512/512)

# check
etap_cli_test(cli_check_list 0 "[0-9]+ configs and 10 golden checks" ARGS check --list)
etap_cli_test(cli_check_quick_list 0 "47 configs and 10 golden checks" ARGS check --list --quick)
etap_cli_test(cli_check_json_unwritable 3 "cannot write .*/no-such-dir/check\\.json"
  ARGS check --quick --json /no-such-dir/check.json)
etap_cli_test(cli_check_no_gpu 2 "etap check: ${no_gpu_text}" NO_GPU ARGS check --quick)
# The installed etap finds the installed golden cases.
etap_cli_test(cli_installed_golden_dir 0 "golden cases: [^\n]*/cli_installed_golden_dir-prefix/share/etap/golden \\(5 cases\\)"
  INSTALLED ARGS check --list --quick)

if(TARGET etap_bench)
  etap_cli_test(cli_bench_help 0
    "--sweep.*-s,--seqlen.*tokens; K = 1024, M = 1048576.*--h-kv.*--page-size.*--head-dims.*Sweeps:\n +paper .*\n +heads .*\n +batch .*\n +varlen .*\n +coverage .*\n +all .*padded baseline .*n/a"
    ARGS bench --help)
  etap_cli_test(cli_bench_list 0
    "custom: b=2 s_k=8192 h_q=16 s_q=2 causal\ncustom: b=2 s_k=1048576 h_q=16 s_q=2 causal\n"
    ARGS bench --list -b 2 -s 8K,1M --h-q 16 --s-q 2 --causal --iters 5)
  etap_cli_test(cli_bench_list_coverage 0
    "coverage: b=16 s_k=8192 h_q=128 s_q=1\ncoverage: b=16 s_k=8192 h_q=64 s_q=2 causal\ncoverage: b=128 s_k=4096 h_q=128 s_q=1\ncoverage: b=16 s_k=8192 h_q=16 s_q=1 page=1\n.*coverage: b=16 s_k=8192 h_q=16 s_q=1 d=320/256\ncoverage: b=16 s_k=8192 h_q=32 s_q=1 h_kv=2\n"
    ARGS bench --list --sweep coverage)
  etap_cli_test(cli_bench_list_shape_axes 0
    "custom: b=16 s_k=4096 h_q=32 s_q=1 page=1\ncustom: b=16 s_k=4096 h_q=32 s_q=1 page=1 d=320/256\ncustom: b=16 s_k=4096 h_q=32 s_q=1 h_kv=2 page=1\ncustom: b=16 s_k=4096 h_q=32 s_q=1 h_kv=2 page=1 d=320/256\n"
    ARGS bench --list --h-q 32 --h-kv 1,2 --page-size 1 --head-dims 576/512,320/256)
  etap_cli_test(cli_bench_sweep_excludes_shape_axes 108 "--sweep excludes --page-size"
    ARGS bench --list --sweep coverage --page-size 16)
  etap_cli_test(cli_bench_list_varlen 0 "custom: b=16 s_k~4096 h_q=16 s_q=1\n" ARGS bench --list --varlen 4K)
  etap_cli_test(cli_bench_seqlen_units 105 "--seqlen: .*4096kb" ARGS bench --list --seqlen 4096kb)
  etap_cli_test(cli_bench_batch_zero 105 "--batch: Value 0 ${not_in_range}" REJECT "[0-9]{20}"
    ARGS bench --list --batch 0)
  # The coverage sweep on the GPU: every row checked and timed; the padded baseline's rows read n/a, the
  # cuBLAS baseline's h_kv = 2 row "unsupported"; nothing fails (exit 0). Skipped without a GPU.
  etap_cli_test(cli_bench_gpu_coverage 0 "page +d +µs .*%gemm.*padded .* n/a .*etap .*320/256 " REJECT "FAILED"
    SKIP_EXIT 2 GPU ARGS bench --sweep coverage --iters 3 --warmup 1)
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
