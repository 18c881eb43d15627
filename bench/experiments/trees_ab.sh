#!/usr/bin/env bash
# Alternating A/B of several kernel trees in one device call: the checkout itself ("main") and copies of it
# (not of HEAD: the device machine's .git may be older than the tree it gets) plus patches of
# bench/experiments (`base=`: none). Builds them in parallel, runs the GPU tests (TESTS) on each tree, then
# `etap bench --impl etap --no-check` over CONFIGS, REPS times, the trees alternating inside each rep, and prints one line per config last.
#   bench/experiments/trees_ab.sh OUT main alt=rows_alternating_blocks alts=rows_alternating_blocks+spin_wait
# Env: REPS (2), CONFIGS (newline-separated `etap bench` arguments), TIMELINE (tree names that also build
# etap_timeline and print one raw CTA at b=132 1K h_q 64 on 33 SMs), TESTS (gtest filter; default RowsKernel.*).
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${1:?OUT}; shift
mkdir -p "$OUT"
ROOT=$PWD
REPS=${REPS:-2}
TESTS=${TESTS:-RowsKernel.*}
CONFIGS=${CONFIGS:-"-b 16 -s 8192 --h-q 16
-b 1 -s 8192 --h-q 16
-b 16 -s 8192 --h-q 64,128
-b 16 -s 8192 --h-q 64 --s-q 2 --causal
-b 128 -s 4096 --h-q 128"}
declare -A DIR
NAMES=()
jobs_each=$(( $(nproc) / $# )); [ "$jobs_each" -lt 2 ] && jobs_each=2
for spec in "$@"; do
  name=${spec%%=*}; NAMES+=("$name")
  if [ "$name" = "$spec" ]; then DIR[$name]=.; continue; fi
  d=.ab-$name; DIR[$name]=$d
  rm -rf "$d" && mkdir -p "$d" && tar -c --exclude=./.git --exclude=./build-gpu --exclude='./.ab-*' --exclude=./build \
    --exclude=./.anchors --exclude=./.peers . | tar x -C "$d"
  IFS=+ read -ra patches <<<"${spec#*=}"
  for pa in "${patches[@]}"; do
    (cd "$d" && GIT_DIR=/nonexistent git apply "$ROOT/bench/experiments/$pa.patch") >>"$OUT/apply-$name.log" 2>&1 ||
      { echo "apply $pa on $name failed"; cat "$OUT/apply-$name.log"; exit 1; }
  done
done
build() {
  local name=$1 d=${DIR[$1]} targets="etap_cli etap_gpu_tests"
  [[ " ${TIMELINE:-} " == *" $name "* ]] && targets="$targets etap_timeline"
  (cd "$d" && cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DETAP_PTXAS_VERBOSE=ON >"$OUT/cfg-$name.log" 2>&1 &&
    cmake --build build-gpu -j "$jobs_each" --target $targets >"$OUT/build-$name.log" 2>&1)
  echo "build $name rc=$? spills: $(grep -A2 'etap_decode_kernel' "$OUT/build-$name.log" | grep -o '[0-9]* bytes spill stores' | sort | uniq -c | tr '\n' ' ')"
}
t0=$(date +%s)
for n in "${NAMES[@]}"; do build "$n" & done; wait
echo "builds: $(( $(date +%s) - t0 )) s"
for n in "${NAMES[@]}"; do
  echo "$n tests: $("${DIR[$n]}"/build-gpu/tests/etap_gpu_tests --gtest_filter="$TESTS" 2>&1 | grep -E '^\[  (PASSED|FAILED)' | tr '\n' ' ')"
done
for rep in $(seq "$REPS"); do
  for n in "${NAMES[@]}"; do
    while IFS= read -r cfg; do
      [ -z "$cfg" ] && continue
      # shellcheck disable=SC2086
      "${DIR[$n]}"/build-gpu/tools/etap/etap bench --impl etap --no-check $cfg 2>&1 | grep '^etap ' |
        awk -v w="$n" -v r="$rep" '{print w, r, $2, $3, $4, $5, $6}'
    done <<<"$CONFIGS"
  done
done | tee "$OUT/ab.txt"
for n in ${TIMELINE:-}; do
  "${DIR[$n]}"/build-gpu/bench/etap_timeline -b 132 -s 1024 --h-q 64 --num-sms 33 --detail 0 --raw 5 >"$OUT/raw-$n.txt" 2>&1
  echo "timeline $n: $(grep -E 'per block|CTA end' "$OUT/raw-$n.txt" | tr '\n' ' ' | cut -c1-300)"
done
echo "== b s_k h_q s_q: tree:µs per rep"
awk '{k=$3" "$4" "$5" "$6; a[k]=a[k]" "$1":"$7} END{for (k in a) print k, a[k]}' "$OUT/ab.txt" | sort -n
