#!/bin/bash
# L-BFGS beside PyTorch's (docs/performance.md, "L-BFGS beside PyTorch"): sessions/sine-lbfgs.json
# after 300 Adam steps and one L-BFGS step (strong Wolfe), then 30 more steps from the same
# state on SpecBench's fast and reference backends and under torch.optim.LBFGS (the exported
# script's model and restored state), interleaved over 5 rounds; each prints its training time
# alone, its evaluations and its final loss. Needs torch (SPECBENCH_WITH_TORCH=1 scripts/setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -c 'import torch' 2>/dev/null || { echo "torch is not installed: SPECBENCH_WITH_TORCH=1 scripts/setup.sh" >&2; exit 1; }
swift build -c release >/dev/null
B=.build/release/specbench
D=$(mktemp -d)
trap 'rm -rf "$D"' EXIT
$B run sessions/sine-lbfgs.json --save "$D/warm" >/dev/null
$B run "$D/warm.json" --optimizer "lbfgs line_search=strong_wolfe" --steps 1 --save "$D/start" >/dev/null 2>&1
$B export "$D/start.json" --to pytorch --out "$D/torch" >/dev/null
summary() { python3 -c "
import sys, json
events = [json.loads(line) for line in sys.stdin]
print(json.dumps({'seconds': events[-1]['seconds'], 'evals': sum(e.get('func_evals', 0) for e in events), 'loss': events[-1]['train_loss']}))"; }
for round in 1 2 3 4 5; do
  echo "round $round torch     $(python3 Benchmarks/lbfgs_torch_peer.py "$D/torch.py" 30)"
  for backend in fast reference; do
    echo "round $round $(printf '%-9s' $backend) $($B run "$D/start.json" --steps 30 --backend $backend --json | summary)"
  done
done
