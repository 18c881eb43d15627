#!/usr/bin/env bash
# The Python package on a Hopper machine with PyTorch, in one call: install it from this tree with the
# documented command, run its pytest suite, then (when peer paths are given) the peer benchmark; a short
# summary comes last. Logs, JUnit XML and the benchmark's JSON go to $OUT (default ./py-out).
#
# usage: python/tools/device-check.sh [--clean] [--flashmla DIR] [--seed DIR] [--build-peers DIR]
#                                     [--steps "install test bench"] [-- extra pytest args]
#   --clean            remove python/build (scikit-build-core's kept build tree) first: a build from scratch
#   --flashmla/--seed  PYTHONPATH entries whose flash_mla is FlashMLA 9241ae3 / the ETAP seed code
#   --build-peers DIR  build both peers first with .anchors/build.sh DIR (~2 min; carry .anchors) and use them
#   --steps            any of install, test, bench (default: all three; bench runs with or without peers)
# Environment: ETAP_LIBRARY=<libetap.so> also runs the ctypes repro of the reported crash (test_errors.py);
# by default build/src/libetap.so is used when the tree has one.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
root=$(pwd)
out=${OUT:-$root/py-out}
mkdir -p "$out"
export PATH=/usr/local/cuda/bin:$PATH PYTHONUNBUFFERED=1
python=${PYTHON:-python3}

clean=0 flashmla="" seed="" peers_dir="" steps="install test bench" pytest_extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --clean) clean=1 ;;
    --flashmla) flashmla=$2; shift ;;
    --seed) seed=$2; shift ;;
    --build-peers) peers_dir=$2; shift ;;
    --steps) steps=$2; shift ;;
    --) shift; pytest_extra=("$@"); break ;;
    *) echo "device-check.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done

summary=()
note() { summary+=("$1"); echo "== $1"; }
has_step() { [[ " $steps " == *" $1 "* ]]; }
t0=$(date +%s)
elapsed() { echo "$(( $(date +%s) - t0 )) s"; }

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | head -1 | tee "$out/card.txt"
"$python" -c "import torch, sys; print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.version.cuda)" \
  2>&1 | tee "$out/versions.txt"

if [ -n "$peers_dir" ]; then
  if [ -f .anchors/build.sh ]; then
    bash .anchors/build.sh "$peers_dir" 2>&1 | tee "$out/peers-build.log"
    [ -z "$flashmla" ] && flashmla=$peers_dir/flashmla
    [ -z "$seed" ] && seed=$peers_dir/etapseed
    note "peers built into $peers_dir ($(elapsed))"
  else
    note "peers: .anchors/build.sh not in the tree (carry .anchors); benchmark without peers"
  fi
fi

# A later call on a machine that went cold has no package any more: install it again first.
if ! has_step install && ! "$python" -c "import etap._C, etap.flash_mla" >/dev/null 2>&1; then
  steps="install $steps"
fi

if has_step install; then
  [ "$clean" = 1 ] && rm -rf python/build
  # The documented install command; --no-build-isolation: no network (scikit-build-core, pybind11 present).
  if "$python" -m pip install --no-build-isolation -v ./python >"$out/install.log" 2>&1; then
    note "install: ok ($(elapsed)): $("$python" -c 'import etap, os; print(os.path.dirname(etap.__file__))' 2>&1)"
  else
    note "install: FAILED ($(elapsed)); tail of $out/install.log:"
    tail -30 "$out/install.log"
  fi
fi

if has_step test; then
  [ -z "${ETAP_LIBRARY:-}" ] && [ -f build/src/libetap.so ] && export ETAP_LIBRARY=$root/build/src/libetap.so
  # Run from python/tests' parent with the installed package: the source tree's etap/ (no _C) is not on
  # sys.path (pytest puts only the tests folder there).
  (cd "$out" && "$python" -m pytest "$root/python/tests" -p no:cacheprovider -q -rfEs --durations=15 \
     --junitxml="$out/pytest.xml" "${pytest_extra[@]}" 2>&1 | tee "$out/pytest.log")
  note "pytest: $(grep -E '^(=+ )?[0-9]+ (passed|failed|error)' "$out/pytest.log" | tail -1 | tr -d '=') ($(elapsed))"
fi

if has_step bench; then
  bench_args=(--json "$out/bench.json")
  [ -n "$flashmla" ] && bench_args+=(--flashmla "$flashmla")
  [ -n "$seed" ] && bench_args+=(--seed "$seed")
  (cd "$out" && "$python" -m etap.bench "${bench_args[@]}" 2>&1 | tee "$out/bench.log")
  note "bench: done ($(elapsed)); table in $out/bench.log, data in $out/bench.json"
fi

echo
echo "==================== summary ($(cat "$out/card.txt" 2>/dev/null)) ===================="
for line in "${summary[@]}"; do echo "$line"; done
if has_step bench && [ -f "$out/bench.log" ]; then
  sed -n '/^cross-check\|^| config\|^|---\|^| b/p' "$out/bench.log"
fi
