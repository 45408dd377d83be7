#!/bin/bash
# Two builds of `nabla` against each other, alternated process by process:
# one training epoch of LeNet, the MLP and the row-by-row LSTM on
# Fashion-MNIST at 1 and 2 threads, ROUNDS times. Prints one line per run
# (side, model, threads, round, train loss, training seconds, a hash of the
# final weights) and then, per model and thread count, the best and median
# training seconds of each side and whether every run's weights agree.
#
#   git stash; cargo build --release --bin nabla; cp target/release/nabla /tmp/nabla-before
#   git stash pop; cargo build --release --bin nabla
#   bench/ab_binaries.sh /tmp/nabla-before target/release/nabla 5
#
# MODELS="lstm-rows" limits the runs to some of the models.
# Needs Debian's dataset-fashion-mnist (/usr/share/datasets/fashion-mnist).
set -euo pipefail
A=${1:?usage: ab_binaries.sh BINARY_A BINARY_B [ROUNDS]}
B=${2:?usage: ab_binaries.sh BINARY_A BINARY_B [ROUNDS]}
ROUNDS=${3:-5}
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
settings() {
  case $1 in
    lenet) echo "--optimizer sgd --lr 0.001 --momentum 0.9" ;;
    mlp) echo "--optimizer sgd --lr 0.01 --momentum 0.9" ;;
    *) echo "--optimizer adam --lr 0.002" ;;
  esac
}
for r in $(seq 1 "$ROUNDS"); do
  for m in ${MODELS:-lenet mlp lstm-rows}; do
    for t in 1 2; do
      for side in A B; do
        bin=$A; [ $side = B ] && bin=$B
        d=$OUT/$side-$m-$t-$r
        # shellcheck disable=SC2046
        "$bin" train --model $m --dataset fashion-mnist --epochs 1 --threads $t $(settings $m) --out "$d" >/dev/null
        echo "$side $m $t $r $(tail -1 "$d/metrics.csv" | cut -d, -f3,8 | tr , ' ') $(md5sum < "$d/model.safetensors" | cut -c1-8)"
      done
    done
  done
done | tee "$OUT/runs.txt"
python3 - "$OUT/runs.txt" <<'PY'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    side, model, threads, _, loss, secs, weights = line.split()
    runs.setdefault((model, threads), {}).setdefault(side, []).append((float(secs), weights))
print("\n| model | threads | A best / median s | B best / median s | B/A (medians) | weights |")
print("|---|---|---|---|---|---|")
for (model, threads), sides in runs.items():
    a, b = ([s for s, _ in sides[k]] for k in "AB")
    same = len({w for k in "AB" for _, w in sides[k]}) == 1
    print(f"| {model} | {threads} | {min(a):.3f} / {statistics.median(a):.3f} | "
          f"{min(b):.3f} / {statistics.median(b):.3f} | {statistics.median(b) / statistics.median(a):.3f} | "
          f"{'identical' if same else 'DIFFER'} |")
PY
