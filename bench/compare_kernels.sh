#!/usr/bin/env bash
# Kernel benchmarks side by side: nabla vs PyTorch, 1 and 2 threads, the two
# sides alternated ROUNDS times; prints the best of each and the ratio.
#   PYTHON=~/torch/bin/python bench/compare_kernels.sh [ROUNDS] [CASE ...]
# (cases by name, default matmul and conv2d_lenet; e.g. attention)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
ROUNDS=${1:-3}
shift || true
CASES=("${@:-matmul conv2d_lenet}")
# shellcheck disable=SC2206
CASES=(${CASES[*]})
cargo bench -q -p nabla-core --bench kernels --no-run >/dev/null 2>&1
BIN=$(ls -t target/release/deps/kernels-* | grep -v '\.d$' | head -1)
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
for threads in 1 2; do
  for r in $(seq "$ROUNDS"); do
    NABLA_NUM_THREADS=$threads "$BIN" "${CASES[@]}" >>"$tmp/nabla_$threads"
    OMP_NUM_THREADS=$threads "$PYTHON" bench/pytorch_kernels.py "$threads" "${CASES[@]}" >>"$tmp/torch_$threads"
  done
done
"$PYTHON" - "$tmp" <<'PY'
import sys, collections
tmp = sys.argv[1]
def best(path):
    vals, units = collections.defaultdict(list), {}
    for line in open(path):
        if line.startswith("#"): continue
        name, v, unit = line.split()
        vals[name].append(float(v)); units[name] = unit
    # GFLOP/s: higher is better; ms: lower is better
    return {k: (max(v) if units[k] == "GFLOP/s" else min(v), units[k]) for k, v in vals.items()}
print(f"{'case':<24}{'threads':>8}{'nabla':>12}{'pytorch':>12}{'unit':>9}{'speed-up':>10}")
for t in (1, 2):
    a, b = best(f"{tmp}/nabla_{t}"), best(f"{tmp}/torch_{t}")
    for k, (v, unit) in a.items():
        w = b[k][0]
        ratio = v / w if unit == "GFLOP/s" else w / v
        print(f"{k:<24}{t:>8}{v:>12.2f}{w:>12.2f}{unit:>9}{ratio:>9.2f}x")
PY
