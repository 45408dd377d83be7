#!/usr/bin/env python3
"""Scarce data: LeNet's test accuracy against the share of the training set,
with and without augmentation, over several seeds.

    cargo build --release --bin nabla
    python3 bench/scarce_data.py                      # both data sets, 3 seeds
    python3 bench/scarce_data.py --datasets mnist --seeds 1

Every run is `nabla train --model lenet --optimizer adam --lr 1e-3
--epochs E --train-fraction F [--augment SPEC]` (E = 10, or --epochs),
tested on the whole test set after the last epoch; the table gives the mean and the spread (min–max)
of the final accuracy, and the training seconds per epoch. Fashion-MNIST
comes from Debian's dataset-fashion-mnist (apt-get install
dataset-fashion-mnist); mnist is the shipped digits.
"""
import argparse
import csv
import os
import subprocess
import tempfile

AUGMENT = {
    "mnist": "crop:2,rotate:10,elastic",
    "fashion-mnist": "crop:2,flip,erase",
}


def run(binary, dataset, fraction, augment, seed, threads, epochs, out):
    cmd = [binary, "train", "--model", "lenet", "--dataset", dataset, "--optimizer", "adam",
           "--lr", "1e-3", "--epochs", str(epochs), "--seed", str(seed), "--threads", str(threads),
           "--train-fraction", str(fraction), "--out", out]
    if augment:
        cmd += ["--augment", augment]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    with open(os.path.join(out, "metrics.csv")) as f:
        rows = list(csv.DictReader(f))
    seconds = sum(float(r["train_seconds"]) for r in rows) / len(rows)
    return float(rows[-1]["accuracy"]), seconds


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--binary", default="target/release/nabla")
    ap.add_argument("--datasets", default="mnist,fashion-mnist")
    ap.add_argument("--fractions", default="0.01,0.05,0.2,1")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=10)
    a = ap.parse_args()
    print("| data | share of the training set | augmentation | accuracy (mean, min–max) | s/epoch |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for dataset in a.datasets.split(","):
            for fraction in a.fractions.split(","):
                for augment in ("", AUGMENT[dataset]):
                    results = [run(a.binary, dataset, fraction, augment, seed, a.threads, a.epochs,
                                   os.path.join(tmp, f"{dataset}-{fraction}-{bool(augment)}-{seed}"))
                               for seed in range(1, a.seeds + 1)]
                    acc = [100 * r[0] for r in results]
                    secs = sum(r[1] for r in results) / len(results)
                    print(f"| {dataset} | {100 * float(fraction):g}% | {augment or 'none'} | "
                          f"{sum(acc) / len(acc):.1f}% ({min(acc):.1f}–{max(acc):.1f}) | "
                          f"{secs:.2f} |", flush=True)


if __name__ == "__main__":
    main()
