#!/usr/bin/env bash
# Timing study on the device machine (docs/PERF.md, "experiments"): one `etap run` per line of
# "<env assignments> | <etap run flags>", printing µs and GB/s. The ETAP_TUNE_* knobs are described in
# src/decode/launch.hpp at commit 9aceb17, since removed; some of them break the results on purpose (no reference check here).
#   bench/experiments/tune.sh [experiments-file]   (default: read from stdin)
set -uo pipefail
cd "$(dirname "$0")/../.."
ETAP=${ETAP:-build-gpu/tools/etap/etap}
printf '%-46s %-44s %10s %10s\n' "knobs" "config" "µs" "GB/s"
while IFS='|' read -r knobs flags; do
  [[ -z "${knobs// }" && -z "${flags// }" ]] && continue
  [[ "$knobs" == \#* ]] && continue
  line=$(env $knobs timeout 120 $ETAP run $flags --no-check --iters 30 --warmup 5 2>&1 | grep '^decode:')
  us=$(awk '{print $2}' <<<"$line"); gbs=$(awk '{print $4}' <<<"$line")
  printf '%-46s %-44s %10s %10s\n' "${knobs:-default}" "$flags" "${us:-ERR}" "${gbs:--}"
done < "${1:-/dev/stdin}"
