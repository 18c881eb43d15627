#!/usr/bin/env bash
# The device run behind docs/PERF.md: tests, full conformance sweep, benchmark sweeps (events and CUDA
# graphs), and Nsight Compute's speed-of-light view of the decode kernel at 8K and 64K tokens.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-$PWD/gpu-out}
export ETAP_TEST_TIMEOUT=150
ETAP_BENCH_ARGS="--sweep all --json $OUT/bench-all.json --csv $OUT/bench-all.csv" \
  tools/gpu-check.sh ${STEPS:-build unit check sanitize bench} >"$OUT/gc.log" 2>&1
grep -A20 "==== summary" "$OUT/gc.log"
E=build-gpu/tools/etap/etap
timeout 120 $E bench --sweep paper --graph --json "$OUT/bench-paper-graph.json" >"$OUT/bench-graph.log" 2>&1
tail -20 "$OUT/bench-graph.log"
bench/experiments/tune.sh bench/experiments/experiments-4.txt >"$OUT/tune.txt" 2>&1; cat "$OUT/tune.txt"
[ -n "${ETAP_NCU:-}" ] && for sk in 8192 65536; do
  timeout 90 ncu --clock-control none --section SpeedOfLight --section MemoryWorkloadAnalysis \
    -k regex:etap_decode_kernel -c 1 $E run --batch 16 --seqlen $sk --no-check --iters 1 --warmup 0 \
    >"$OUT/ncu-b16-$sk.txt" 2>&1
  grep -E "DRAM Throughput|Memory Throughput|Duration|Compute \(SM\) Throughput|L2 Hit|Mem Busy|Max Bandwidth" "$OUT/ncu-b16-$sk.txt" | head -12
done
