#!/usr/bin/env bash
# SpecBench's backends beside the peer programs in ../shared/peers (NumPy, and JAX with optax),
# on the same presets, in one run: for each preset, the peers and `specbench bench` alternate
# ROUNDS times, so the machine's noise falls on both; the ratios are of the medians.
# Each round of ours also measures OpenBLAS's sgemm peak (n = 1024, every core; `bench --peak`),
# so that "percent of the machine's limit" is a ratio measured in the same run: the last column
# is the backend's GFLOP/s over the median peak of that preset's rounds.
#   usage: Benchmarks/peers.sh [ROUNDS] [STEPS_SCALE]   (defaults 3 and 1; a scale of 0.1 runs
#   a tenth of the steps, for a quick look). The peers are looked for in ../shared/peers, or in
#   $SPECBENCH_PEERS.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
scale=${2:-1}
peers=${SPECBENCH_PEERS:-../shared/peers}
python=python3
[ -x .venv/bin/python3 ] && python=.venv/bin/python3
if [ ! -f "$peers/numpy_mlp.py" ]; then
  echo "peers.sh: $peers/numpy_mlp.py not found; set SPECBENCH_PEERS to the folder of the peer programs" >&2
  exit 1
fi
if ! $python -c 'import numpy' 2>/dev/null; then
  echo "peers.sh: the NumPy peer needs numpy (scripts/setup.sh installs it)" >&2
  exit 1
fi
swift build -c release >&2
specbench=.build/release/specbench
# SPECBENCH_BACKEND=fast (or another name) runs one of ours rather than all of them.
backends=""
[ -n "${SPECBENCH_BACKEND:-}" ] && backends="--backend $SPECBENCH_BACKEND"

steps_for() { $python -c "print(max(10, int($1 * $scale)))"; }
median() { $python -c "import statistics,sys; print(statistics.median(float(x) for x in sys.argv[1:]))" "$@"; }

have_jax=false
$python -c 'import jax, optax' 2>/dev/null && have_jax=true
$have_jax || echo "peers.sh: skipped the JAX peer (jax_mlp.py needs jax and optax: scripts/setup.sh installs them)" >&2

printf '%-10s %-10s %12s %12s %9s %12s %9s %9s %8s\n' preset backend "steps/s" "numpy" ratio "jax peer" ratio "GFLOP/s" "of peak"
for preset in mlp-mnist spirals cnn-digits lenet; do
  # The MLP presets run ../shared/peers' numpy_mlp.py and jax_mlp.py; the image presets
  # Benchmarks/jax_cnn_peer.py (no NumPy peer: NumPy has no convolution).
  case $preset in
    mlp-mnist) sizes=784,256,128,10 batch=128 steps=$(steps_for 300) ;;
    spirals) sizes=2,64,64,3 batch=64 steps=$(steps_for 3000) ;;
    cnn-digits) batch=64 steps=$(steps_for 300) ;;
    lenet) batch=64 steps=$(steps_for 100) ;;
  esac
  numpy_runs=()
  jax_runs=()
  peaks=()
  products=()
  declare -A ours=()
  declare -A flops=()
  for _ in $(seq "$rounds"); do
    case $preset in
      mlp-mnist | spirals)
        numpy_runs+=("$($python $peers/numpy_mlp.py --sizes $sizes --batch $batch --steps "$steps" | sed 's/.*steps_per_sec=\([0-9.]*\).*/\1/')")
        if $have_jax; then
          jax_runs+=("$($python $peers/jax_mlp.py --sizes $sizes --batch $batch --steps "$steps" | sed 's/.*steps_per_sec=\([0-9.]*\).*/\1/')")
        fi
        ;;
      *)
        if $have_jax; then
          jax_runs+=("$($python Benchmarks/jax_cnn_peer.py --preset $preset --batch $batch --steps "$steps" | sed 's/.*steps_per_sec=\([0-9.]*\).*/\1/')")
        fi
        ;;
    esac
    while read -r backend rate gflops share; do
      if [ "$backend" = sgemm-peak ]; then
        peaks+=("$gflops")
      else
        ours[$backend]="${ours[$backend]:-} $rate"
        flops[$backend]="${flops[$backend]:-} $gflops"
        [ "$share" != nan ] && products+=("$share")
      fi
    done < <($specbench bench --preset $preset --steps "$steps" --repeats 1 --json --peak $backends |
      $python -c "import json,sys; [print(d.get('backend', d['preset']), d.get('steps_per_sec', 0), d['gflops'], d['products_ms_per_step'] / d['ms_per_step'] if d.get('products_ms_per_step') else 'nan') for d in map(json.loads, sys.stdin)]")
  done
  numpy=nan
  ((${#numpy_runs[@]})) && numpy=$(median "${numpy_runs[@]}")
  jax_peer=nan
  ((${#jax_runs[@]})) && jax_peer=$(median "${jax_runs[@]}")
  peak=$(median "${peaks[@]}")
  for backend in "${!ours[@]}"; do
    # shellcheck disable=SC2086
    ours_median=$(median ${ours[$backend]})
    # shellcheck disable=SC2086
    gflops_median=$(median ${flops[$backend]})
    printf '%-10s %-10s %12.1f %12.1f %8.2fx %12.1f %8.2fx %9.1f %7.1f%%\n' $preset "$backend" "$ours_median" "$numpy" \
      "$($python -c "print($ours_median / float('$numpy'))")" "$jax_peer" "$($python -c "print($ours_median / float('$jax_peer'))")" \
      "$gflops_median" "$($python -c "print(100 * $gflops_median / $peak)")"
  done
  printf '%-10s sgemm peak %.1f GFLOP/s (OpenBLAS, n = 1024, every core; median of the rounds)\n' $preset "$peak"
  # fast's matrix products alone (bench --peak times them beside its step): the rest of the step
  # is everything else the trainer does.
  ((${#products[@]})) && printf '%-10s fast: its products alone take %.0f %% of its step (median of the rounds)\n' $preset \
    "$($python -c "print(100 * $(median "${products[@]}"))")"
  unset ours flops
done
