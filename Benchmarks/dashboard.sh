#!/usr/bin/env bash
# What the dashboard costs training: steps/s of sessions/spirals.json trained headless (the REPL
# reading a script: the same engine and worker, no screen) and with the dashboard open in a
# terminal (tmux), alternating ROUNDS times per backend so that the machine's noise falls on
# both; the ratios are of the medians.
#   usage: Benchmarks/dashboard.sh [ROUNDS] [STEPS_REFERENCE] [STEPS_FAST] [WIDTHxHEIGHT]
#   (defaults 5, 30000, 300000 and 160x48). The session's stop rules are replaced by max_steps so
#   that every run trains the same number of steps (spirals.json itself stops at step 96 on its
#   target loss, too soon to time).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
steps_reference=${2:-30000}
steps_fast=${3:-300000}
size=${4:-160x48}
width=${size%x*}
height=${size#*x}
python=python3
[ -x .venv/bin/python3 ] && python=.venv/bin/python3
command -v tmux >/dev/null || {
  echo "dashboard.sh: needs tmux (scripts/setup.sh installs it)" >&2
  exit 1
}
swift build -c release >&2
specbench=$PWD/.build/release/specbench
work=$(mktemp -d)
trap 'tmux -L specbench-bench kill-server 2>/dev/null || true; rm -rf "$work"' EXIT

session() { # backend steps -> path of a copy of spirals.json with only a max_steps rule
  $python - "$1" "$2" "$work/spirals-$1.json" <<'EOF'
import json, sys
spec = json.load(open("sessions/spirals.json"))
spec["backend"] = sys.argv[1]
spec["training"]["stop"] = [{"type": "max_steps", "steps": int(sys.argv[2])}]
json.dump(spec, open(sys.argv[3], "w"))
EOF
  echo "$work/spirals-$1.json"
}

rate() { sed -n 's/.*steps in [0-9.e+-]* s, \([0-9]*\) steps\/s).*/\1/p' | head -1; }

headless() { # file -> steps/s
  printf 'train\n' | "$specbench" repl "$1" | rate
}

dashboard() { # file -> steps/s, training started with space in the open dashboard
  local name=bench-$RANDOM
  tmux -L specbench-bench new-session -d -s "$name" -x "$width" -y "$height" "$specbench dashboard $1"
  # The first frame, then space starts training; wait for the stop event in the events pane.
  for _ in $(seq 100); do
    tmux -L specbench-bench capture-pane -p -t "$name" | grep -q "space run/pause" && break
    sleep 0.05
  done
  tmux -L specbench-bench send-keys -t "$name" ' '
  local screen=""
  for _ in $(seq 1200); do
    screen=$(tmux -L specbench-bench capture-pane -p -t "$name")
    grep -q "steps/s) " <<<"$screen" && break
    sleep 0.1
  done
  tmux -L specbench-bench kill-session -t "$name"
  rate <<<"$screen"
}

median() { $python -c "import statistics,sys; print(statistics.median(float(x) for x in sys.argv[1:]))" "$@"; }

printf 'spirals.json, %s rounds, dashboard at %sx%s\n' "$rounds" "$width" "$height"
printf '%-10s %8s %16s %16s %10s   %s\n' backend steps "headless steps/s" "dashboard steps/s" "cost" "runs (headless | dashboard)"
for backend in reference fast; do
  steps=$steps_reference
  [ "$backend" = fast ] && steps=$steps_fast
  file=$(session "$backend" "$steps")
  plain=()
  shown=()
  for _ in $(seq "$rounds"); do
    plain+=("$(headless "$file")")
    shown+=("$(dashboard "$file")")
  done
  a=$(median "${plain[@]}")
  b=$(median "${shown[@]}")
  printf '%-10s %8s %16.0f %16.0f %9.1f%%   %s | %s\n' "$backend" "$steps" "$a" "$b" \
    "$($python -c "print(100 * (1 - $b / $a))")" "${plain[*]}" "${shown[*]}"
done
