#!/bin/bash
set -euo pipefail
# sessions/README.md, "Adam first, L-BFGS to finish": Adam 300 steps then L-BFGS 30 steps against
# Adam alone with as many evaluations and with 3000 steps, in 3 interleaved rounds (release build).
cd "$(dirname "$0")/.."
swift build -c release >/dev/null
B=.build/release/specbench
S=sessions/sine-lbfgs.json
D=$(mktemp -d)
trap 'rm -rf "$D"' EXIT
done_field() { tail -1 | python3 -c "import sys,json; r=json.loads(sys.stdin.read()); print(r['$1'])"; }
for round in 1 2 3; do
  t1=$($B run $S --save $D/w --json | done_field seconds)
  out=$($B run $D/w.json --optimizer "lbfgs line_search=strong_wolfe" --steps 30 --json 2>/dev/null)
  t2=$(echo "$out" | done_field seconds); l2=$(echo "$out" | done_field train_loss)
  ev=$(echo "$out" | python3 -c "import sys,json; print(sum(json.loads(l).get('func_evals',0) for l in sys.stdin))")
  outa=$($B run $S --steps $((300+ev)) --json); ta=$(echo "$outa" | done_field seconds); la=$(echo "$outa" | done_field train_loss)
  outb=$($B run $S --steps 3000 --json); tb=$(echo "$outb" | done_field seconds); lb=$(echo "$outb" | done_field train_loss)
  echo "round $round: adam300+lbfgs30 ${t1}+${t2}s loss $l2 (evals $ev) | adam $((300+ev)) ${ta}s loss $la | adam 3000 ${tb}s loss $lb"
done
