#!/usr/bin/env bash
# Training on mapped data (IDX and .npy inputs read through a mapping of their file), text
# labels in a CSV, and an array larger than its memory cgroup: seconds, peak resident and peak
# anonymous memory of each run, binaries side by side (Benchmarks/mapped_train.py).
#   usage: Benchmarks/mapped.sh [ROUNDS] [FOLDER] [BINARY ...]   (defaults 3,
#   /tmp/specbench-mapped-bench, and this tree's release build; give an older build's binary
#   beside it to compare)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
folder=${2:-/tmp/specbench-mapped-bench}
shift $(( $# < 2 ? $# : 2 ))
python=python3
[ -x .venv/bin/python3 ] && python=.venv/bin/python3
if ! $python -c 'import numpy' 2>/dev/null; then
  echo "mapped.sh: numpy is needed to write the data; run: $python -m pip install numpy" >&2
  exit 1
fi
if [ $# -eq 0 ]; then
  swift build -c release --product specbench >&2
  set -- "$PWD/.build/release/specbench"
fi
$python Benchmarks/mapped_train.py "$folder" "$rounds" "$@"
