#!/usr/bin/env python3
"""Data-parallel training side by side, one epoch of Fashion-MNIST (60,000
images), SGD lr 0.001 momentum 0.9, 64 examples a step:

  nabla  2 ranks x 1 thread   mpirun -np 2 nabla train --distributed --threads 1 --batch-size 32
  nabla  1 process x 2 threads  nabla train --threads 2 --batch-size 64
  nabla  1 process x 1 thread   (the base of the scaling efficiency)
  PyTorch DDP (gloo) 2 ranks x 1 thread, per-rank batch 32 (bench/pytorch_ddp.py)

in alternated rounds (each configuration once a round, the best of the
rounds kept). nabla must be built with MPI first:

    cargo build --release -p nabla-cli --features distributed
    python3 bench/distributed.py --python /path/to/venv/bin/python [--rounds 2] [--models lenet,lstm-rows]
"""
import argparse
import csv
import json
import os
import shutil
import subprocess
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NABLA = os.path.join(ROOT, "target/release/nabla")
DATA = "/usr/share/datasets/fashion-mnist"
ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")


def nabla(model, ranks, threads, batch):
    out = tempfile.mkdtemp(prefix="nabla-dist-bench-")
    args = [NABLA, "train", "--model", model, "--data", DATA, "--epochs", "1",
            "--batch-size", str(batch), "--threads", str(threads), "--out", out, "--overwrite"]
    if ranks > 1:
        args = ["mpirun", "--oversubscribe", "-np", str(ranks)] + args + ["--distributed"]
    subprocess.run(args, check=True, env=ENV, stdout=subprocess.DEVNULL)
    with open(os.path.join(out, "metrics.csv")) as f:
        row = list(csv.DictReader(f))[-1]
    shutil.rmtree(out)
    return float(row["train_seconds"]), float(row["accuracy"])


def pytorch(python, model):
    r = subprocess.run([python, "pytorch_ddp.py", "--model", model, "--world", "2", "--batch-size", "32"],
                       check=True, capture_output=True, text=True, cwd=os.path.join(ROOT, "bench"))
    j = json.loads(r.stdout.strip().splitlines()[-1])
    return j["train_seconds"], j["accuracy"]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--python", default="python3", help="a Python with torch")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--models", default="lenet,lstm-rows")
    a = p.parse_args()
    configs = {
        "nabla 2 ranks x 1 thread": lambda m: nabla(m, 2, 1, 32),
        "nabla 1 process x 2 threads": lambda m: nabla(m, 1, 2, 64),
        "nabla 1 process x 1 thread": lambda m: nabla(m, 1, 1, 64),
        "PyTorch DDP gloo 2 ranks x 1 thread": lambda m: pytorch(a.python, m),
    }
    for model in a.models.split(","):
        best = {}
        for _ in range(a.rounds):
            for name, run in configs.items():
                s, acc = run(model)
                if name not in best or s < best[name][0]:
                    best[name] = (s, acc)
        base = best["nabla 2 ranks x 1 thread"][0]
        one = best["nabla 1 process x 1 thread"][0]
        print(f"\n{model}: one epoch, seconds of training (best of {a.rounds})")
        for name, (s, acc) in best.items():
            print(f"  {name:38s} {s:7.2f} s  accuracy {acc:.4f}  ({s / base:.2f}x the 2 ranks' time)")
        print(f"  scaling efficiency of 2 ranks: {one / (2 * base):.0%} (1-thread time / (2 x 2-rank time))")


if __name__ == "__main__":
    main()
