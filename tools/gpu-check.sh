#!/usr/bin/env bash
# One call on the device machine: build with all cores, run the GPU tests, the conformance sweep, the
# sanitizers and the benchmark, and print a short table last. Full logs go to $OUT (or ./gpu-out).
#
#   tools/gpu-check.sh [steps...]     steps: configure build unit check sanitize bench sass
#                                     (default: build unit check sanitize bench; build configures first)
#   ETAP_CHECK_ARGS / ETAP_BENCH_ARGS override the arguments of `etap check` / `etap bench`;
#   ETAP_CONFIGURE_ARGS adds CMake arguments; ETAP_BUILD_DIR is the build directory (default build-gpu).
#
# CLI11 is found as the README's build finds it (cmake/etap_cli11.cmake): the installed package, or, on the
# device machine, which has none, a copy carried in .deps (cp -r /usr/include/CLI .deps/CLI11/include/).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/gpu-out}
mkdir -p "$OUT"
BUILD=${ETAP_BUILD_DIR:-build-gpu}
STEPS=${*:-build unit check sanitize bench}
JOBS=$(nproc)
declare -a SUMMARY=()

note() { SUMMARY+=("$(printf '%-10s %-6s %s' "$1" "$2" "$3")"); }
has() { [[ " $STEPS " == *" $1 "* ]]; }
ETAP=$BUILD/tools/etap/etap

nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem,memory.total --format=csv \
  2>/dev/null | tee "$OUT/gpu.txt" || echo "name,(nvidia-smi not available)" >"$OUT/gpu.txt"

configure() {
  # shellcheck disable=SC2086  # ETAP_CONFIGURE_ARGS is a list of arguments
  cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DETAP_PTXAS_VERBOSE=ON ${ETAP_CONFIGURE_ARGS:-} \
    >"$OUT/configure.log" 2>&1
}

if has configure && ! has build; then
  if configure; then
    note configure ok "$(grep -o 'CLI11: .*' "$OUT/configure.log")"
  else
    tail -20 "$OUT/configure.log"
    note configure FAIL "see configure.log"
  fi
fi

if has build; then
  t0=$(date +%s)
  if configure && cmake --build "$BUILD" -j "$JOBS" >"$OUT/build.log" 2>&1; then
    note build ok "$(( $(date +%s) - t0 )) s; ptxas: $(grep -A2 'etap_decode_kernel' "$OUT/build.log" | grep -o '[0-9]* bytes spill stores' | sort -u | tr '\n' ' ')"
  else
    tail -n 40 "$OUT/configure.log" "$OUT/build.log" 2>/dev/null
    note build FAIL "see build.log"
    printf '%s\n' "${SUMMARY[@]}"
    exit 1
  fi
fi

if has unit; then
  ctest --test-dir "$BUILD" -L gpu --output-on-failure --timeout ${ETAP_TEST_TIMEOUT:-300} >"$OUT/ctest-gpu.log" 2>&1
  rc=$?
  grep -E "tests passed|tests failed|\*\*\*Failed|Not Run|Exception|Timeout" "$OUT/ctest-gpu.log" | tail -25
  note gpu-tests "$([ $rc = 0 ] && echo ok || echo FAIL)" "$(grep -Eo '[0-9]+% tests passed.*' "$OUT/ctest-gpu.log")"
fi

if has check; then
  $ETAP check ${ETAP_CHECK_ARGS:---json "$OUT/check.json"} >"$OUT/check.log" 2>&1
  rc=$?
  grep -E "FAIL|passed|failed" "$OUT/check.log" | tail -15
  note check "$([ $rc = 0 ] && echo ok || echo FAIL)" "$(tail -1 "$OUT/check.log")"
fi

if has sanitize; then
  for tool in memcheck racecheck synccheck; do
    for cfg in "--batch 3 --seqlen 200 --h-q 16 --s-q 1" "--batch 2 --seqlen 77 --h-q 8 --s-q 4 --causal" \
               "--batch 2 --seqlen 1000 --h-q 32 --s-q 2 --causal --dtype fp16" \
               "--batch 3 --seqlen 700 --h-q 16 --kv-format fp8" "--batch 2 --seqlen 300 --h-q 64 --kv-format fp8" \
               "--batch 3 --seqlen 300 --h-q 16 --page-size 1 --kv-format fp8" \
               "--batch 3 --seqlen 700 --h-q 16 --kv-format fp8-v32" \
               "--batch 2 --seqlen 300 --h-q 32 --page-size 16 --kv-format fp8-v32" \
               "--batch 2 --seqlen 1000 --h-q 128 --s-q 2 --causal" "--batch 3 --seqlen 2048 --h-q 64" \
               "--batch 4 --varlen 500 --h-q 16 --page-size 1" "--batch 3 --seqlen 600 --h-q 64 --q-lens 1,0,3"; do
      log="$OUT/sanitize-$tool.log"
      compute-sanitizer --tool $tool --error-exitcode 9 $ETAP run $cfg --iters 1 --warmup 0 >>"$log" 2>&1
      rc=$?
      note "$tool" "$([ $rc = 0 ] && echo ok || echo FAIL)" "$cfg: $(grep -Eo '(ERROR SUMMARY|RACECHECK SUMMARY): .*' "$log" | tail -1)"
    done
  done
fi

if has sass; then
  # The bf16 d 576/512 decode kernels: transposed (kernel_bf16_d576) and rows-on-M (kernel_rows_bf16_d576).
  for kernel in kernel_bf16_d576 kernel_rows_bf16_d576; do
    object="$BUILD/src/CMakeFiles/etap_objects.dir/decode/kernel/$kernel.cu.o"
    if cuobjdump -sass "$object" >"$OUT/$kernel.sass" 2>&1; then
      note sass ok "$kernel: HGMMA=$(grep -c HGMMA "$OUT/$kernel.sass") LDL/STL=$(grep -c -E 'LDL|STL' "$OUT/$kernel.sass")"
    else
      note sass FAIL "$kernel: $(head -1 "$OUT/$kernel.sass")"
    fi
  done
fi

if has bench; then
  $ETAP bench ${ETAP_BENCH_ARGS:---sweep paper --json "$OUT/bench.json"} >"$OUT/bench.log" 2>&1
  rc=$?
  tail -45 "$OUT/bench.log"
  note bench "$([ $rc = 0 ] && echo ok || echo FAIL)" "$OUT/bench.log"
fi

echo "==== summary ($(head -2 "$OUT/gpu.txt" | tail -1 | cut -d, -f1)) ===="
printf '%s\n' "${SUMMARY[@]}"
