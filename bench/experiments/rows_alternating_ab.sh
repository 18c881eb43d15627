#!/usr/bin/env bash
# A/B of bench/experiments/rows_alternating_blocks.patch against the tree it is run from, on a Hopper GPU
# (the device machine): builds both trees, runs the rows-on-M tests and the full conformance sweep on the
# patched one, alternates `etap bench` at the R >= 64 rows (two reps) and prints a raw timeline of one CTA.
#   bench/experiments/rows_alternating_ab.sh [OUT_DIR]      (about 6 minutes on 16 cores)
# CLI11 as tools/gpu-check.sh finds it (.deps/CLI11/include on the device machine).
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${1:-${OUT:-$PWD/ab-out}}
mkdir -p "$OUT"
ALT=.ab-alt
rm -rf "$ALT" && mkdir -p "$ALT" && git archive HEAD | tar x -C "$ALT" && { [ -d .deps ] && cp -r .deps "$ALT/"; true; }
# GIT_DIR elsewhere: inside the repository's tree, git apply would silently skip every path outside it.
(cd "$ALT" && GIT_DIR=/nonexistent git apply bench/experiments/rows_alternating_blocks.patch) 2>"$OUT/apply.log" ||
  { cat "$OUT/apply.log"; exit 1; }
build() {
  (cd "$1" && cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release >"$OUT/cfg-$2.log" 2>&1 &&
   cmake --build build-gpu -j 8 --target ${@:3} >"$OUT/build-$2.log" 2>&1; echo "build $2 rc=$?")
}
build . main etap_cli & build "$ALT" alt etap_cli etap_gpu_tests etap_timeline & wait
MAIN=build-gpu/tools/etap/etap; NEW=$ALT/build-gpu/tools/etap/etap
"$ALT"/build-gpu/tests/etap_gpu_tests --gtest_filter='RowsKernel.*' 2>&1 | grep -E '^\[  (PASSED|FAILED)'
for rep in 1 2; do
  for who in main alt; do
    bin=$MAIN; [ $who = alt ] && bin=$NEW
    for cfg in "-b 16 -s 8192 --h-q 64,128" "-b 16 -s 8192 --h-q 64 --s-q 2 --causal" "-b 128 -s 4096 --h-q 128" \
               "-b 132 -s 1024 --h-q 64 --num-sms 33" "-b 16 -s 8192 --h-q 16"; do
      $bin bench --impl etap --no-check $cfg 2>&1 | grep '^etap ' | awk -v w=$who -v r=$rep '{print w, r, $2, $3, $4, $5, $6}'
    done
  done
done | tee "$OUT/ab.txt"
"$ALT"/build-gpu/bench/etap_timeline -b 132 -s 1024 --h-q 64 --num-sms 33 --detail 0 --raw 5 >"$OUT/raw-33.txt" 2>&1
grep -E 'per block|CTA end' "$OUT/raw-33.txt"
$NEW check >"$OUT/check.log" 2>&1; echo "alt check rc=$? $(tail -1 "$OUT/check.log")"
echo "== b s_k h_q s_q: who:us"
awk '{k=$3" "$4" "$5" "$6; a[k]=a[k]" "$1":"$7} END{for (k in a) print k, a[k]}' "$OUT/ab.txt" | sort -n
