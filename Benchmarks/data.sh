#!/usr/bin/env bash
# Loading an MNIST-style CSV (60,000 rows × 785 integer columns, ~168 MB): SpecBench's reader
# beside pandas' read_csv (C engine) and numpy.loadtxt, in one run, each in its own process,
# alternating ROUNDS times; seconds and peak memory, with ratios to pandas (Benchmarks/data_load.py).
#   usage: Benchmarks/data.sh [ROUNDS] [FOLDER]   (defaults 3 and /tmp/specbench-data-bench; the
#   CSV is written there once and reused)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
folder=${2:-/tmp/specbench-data-bench}
python=python3
[ -x .venv/bin/python3 ] && python=.venv/bin/python3
if ! $python -c 'import numpy, pandas' 2>/dev/null; then
  echo "data.sh: installing pandas (the peer this benchmark measures against)" >&2
  $python -m pip install -q --disable-pip-version-check numpy pandas >&2 || {
    echo "data.sh: could not install pandas; run: $python -m pip install pandas" >&2
    exit 1
  }
fi
swift build -c release >&2
$python Benchmarks/data_load.py .build/release/specbench "$folder" "$rounds"
