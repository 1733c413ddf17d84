#!/usr/bin/env bash
# What a long history costs the files: a 1,000,000-step session (sessions/xor.json trained on the
# fast backend) as format version 2 (points in NAME.history.safetensors) and as version 1 (points
# in the JSON), side by side: spec size, load time and save time, alternating ROUNDS times so
# that the machine's noise falls on both; medians are reported.
#   usage: Benchmarks/history.sh [ROUNDS] [STEPS] [OLD_SPECBENCH]
#   (defaults 5 and 1000000). OLD_SPECBENCH is a binary of a SpecBench that writes version 1 (a
#   release build of a commit before format version 2); without it the version-1 save is not
#   timed, and the version-1 load is this SpecBench's migration.
# Load time is `specbench validate` (it loads the spec and every file beside it, checking each);
# save time is `run --steps 1 --save` minus `run --steps 1`, each on a fresh copy.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
steps=${2:-1000000}
old=${3:-}
python=python3
[ -x .venv/bin/python3 ] && python=.venv/bin/python3
swift build -c release >&2
new=$PWD/.build/release/specbench
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/v2" "$work/v1"

start=$(date +%s.%N)
"$new" run sessions/xor.json --steps "$steps" --backend fast --save "$work/v2/xor" >/dev/null
echo "trained $steps steps in $(echo "$(date +%s.%N) - $start" | bc) s" >&2

# The same session in version 1's form: every point back in the JSON, each float32 in its
# shortest form, one [step, value] pair a line.
$python - "$work/v2/xor.json" "$work/v1/xor.json" <<'EOF'
import json, os, sys
import numpy as np
from safetensors.numpy import load_file
spec = json.load(open(sys.argv[1]))
folder = os.path.dirname(sys.argv[1])
points = {}
metrics = spec["history"].pop("metrics")
f = load_file(os.path.join(folder, metrics["file"]))
for m in ("train_loss", "val_loss"):
    points[m] = "@@" + m
spec["history"].update(points)
spec["version"] = 1
text = json.dumps(spec, indent=2, sort_keys=True)
for m in ("train_loss", "val_loss"):
    steps, values = f[m + "/step"], f[m + "/value"]
    lines = ",\n".join(f"      [{int(s)}, {np.float32(v)}]" for s, v in zip(steps, values))
    text = text.replace(f'"@@{m}"', "[\n" + lines + "\n    ]" if len(steps) else "[]")
open(sys.argv[2], "w").write(text + "\n")
EOF
cp "$work/v2/xor.safetensors" "$work/v1/"

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
seconds() { # command... -> wall seconds
  local t0 t1
  t0=$(date +%s.%N)
  "$@" >/dev/null 2>&1 || { echo "failed: $*" >&2; exit 1; }
  t1=$(date +%s.%N)
  echo "$t1 - $t0" | bc
}
fresh() { # version -> a copy of that version's session
  rm -rf "$work/copy"
  cp -r "$work/$1" "$work/copy"
  echo "$work/copy/xor.json"
}

for ((r = 1; r <= rounds; r++)); do
  for v in v2 v1; do
    seconds "$new" validate "$work/$v/xor.json" >>"$work/load-$v-new"
    f=$(fresh $v)
    seconds "$new" run "$f" --steps 1 >>"$work/run-$v-new"
    f=$(fresh $v)
    seconds "$new" run "$f" --steps 1 --save "${f%.json}" >>"$work/runsave-$v-new"
  done
  if [ -n "$old" ]; then
    seconds "$old" validate "$work/v1/xor.json" >>"$work/load-v1-old"
    f=$(fresh v1)
    seconds "$old" run "$f" --steps 1 >>"$work/run-v1-old"
    f=$(fresh v1)
    seconds "$old" run "$f" --steps 1 --save "${f%.json}" >>"$work/runsave-v1-old"
  fi
done

size() { stat -c %s "$1"; }
echo "files of a $steps-step session:"
echo "  version 2: spec $(size "$work/v2/xor.json") bytes, metrics $(size "$work/v2/xor.history.safetensors") bytes, state $(size "$work/v2/xor.safetensors") bytes"
echo "  version 1: spec $(size "$work/v1/xor.json") bytes, state $(size "$work/v1/xor.safetensors") bytes"
echo "medians of $rounds rounds (seconds):"
printf "  %-38s %8s %8s %8s\n" "" "load" "run 1" "run+save"
row() { # label suffix
  local l r s
  l=$(median <"$work/load-$2")
  r=$(median <"$work/run-$2")
  s=$(median <"$work/runsave-$2")
  printf "  %-38s %8.3f %8.3f %8.3f   save ≈ %.3f\n" "$1" "$l" "$r" "$s" "$(echo "$s - $r" | bc)"
}
row "version 2, this SpecBench" v2-new
row "version 1, this SpecBench (migrates)" v1-new
[ -n "$old" ] && row "version 1, the version-1 SpecBench" v1-old
exit 0
