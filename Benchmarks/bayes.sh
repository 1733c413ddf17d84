#!/usr/bin/env bash
# The cost of weights as distributions, measured side by side in one run (docs/bayes.md):
#  1. `specbench posterior` on sessions/blobs-laplace.json beside laplace-torch on the same weights
#     and data (Benchmarks/laplace_torch_peer.py; needs torch and laplace-torch), 3 interleaved
#     rounds, medians;
#  2. Bayes by Backprop's training cost: 300 steps of the trained example as it is, and with its
#     last layer variational (1 and 4 draws a step), 3 interleaved rounds on `fast`, medians.
# Usage: bash Benchmarks/bayes.sh   (builds the release binary first)
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product specbench >/dev/null
bin=.build/release/specbench
python=${SPECBENCH_PYTHON:-python3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$bin" run sessions/blobs-laplace.json --save "$work/trained" >/dev/null
"$bin" export "$work/trained.json" --to pytorch --out "$work/export" >/dev/null
printf 'variational dense3 train_samples=1\nsave %s\n' "$work/v1" | "$bin" "$work/trained.json" >/dev/null
printf 'variational dense3 train_samples=4\nsave %s\n' "$work/v4" | "$bin" "$work/trained.json" >/dev/null

seconds() { local start end; start=$(date +%s.%N); "$@" >/dev/null 2>&1; end=$(date +%s.%N); echo "$end - $start" | bc -l; }
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

declare -A times
for round in 1 2 3; do
  for variant in "last_layer full" "all kron" "all diag"; do
    set -- $variant
    times["specbench $1 $2"]+="$(seconds "$bin" posterior "$work/trained.json" --subset "$1" --hessian "$2")"$'\n'
    if "$python" -c 'import laplace' >/dev/null 2>&1; then
      times["laplace-torch $1 $2"]+="$(seconds "$python" Benchmarks/laplace_torch_peer.py "$work/export.safetensors" "$1" "$2" relu)"$'\n'
    fi
  done
  for run in trained v1 v4; do
    line=$("$bin" run "$work/$run.json" --steps 300 2>&1 | grep -o '[0-9.]* steps/s' | head -1 | cut -d' ' -f1)
    times["train $run"]+="$line"$'\n'
  done
done

echo "posterior (seconds, whole process, median of 3; laplace-torch includes importing torch):"
for variant in "last_layer full" "all kron" "all diag"; do
  ours=$(printf '%s' "${times["specbench $variant"]}" | median)
  theirs=$(printf '%s' "${times["laplace-torch $variant"]:-}" | median)
  printf '  %-16s specbench %6.2f   laplace-torch %s\n' "$variant" "$ours" "${theirs:-(not installed)}"
done
echo "laplace-torch's own timings of the last round (after importing torch):"
for variant in "last_layer full" "all kron" "all diag"; do
  set -- $variant
  "$python" Benchmarks/laplace_torch_peer.py "$work/export.safetensors" "$1" "$2" relu 2>/dev/null | sed "s/^/  $1 $2: /" || true
done
echo "Bayes by Backprop on fast (steps/s, median of 3):"
point=$(printf '%s' "${times["train trained"]}" | median)
for run in v1 v4; do
  rate=$(printf '%s' "${times["train $run"]}" | median)
  printf '  %s: %s steps/s against %s as point weights (%.2fx the time a step)\n' "$run" "$rate" "$point" "$(echo "$point / $rate" | bc -l)"
done
