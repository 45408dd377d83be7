#!/usr/bin/env python3
"""One command for issue 8: nabla against PyTorch on Fashion-MNIST, the two
sides alternated process by process (nabla, PyTorch, nabla, …) at each
thread count, printing a Markdown table of min and median seconds, the
ratio of medians, and each process's peak resident memory.

    cargo build --release --bin nabla
    python3 -m venv ~/torch && ~/torch/bin/pip install torch
    python3 bench/compare.py --python ~/torch/bin/python [--threads 1 2] [--repeats 3]
        [--models lenet mlp lstm-rows gru-rows rnn-rows] [--accuracy-seeds 1 2 3]

Per model and side: one training epoch over the 60,000 images (batch 64),
then one evaluation of the 10,000 test images (batch 1000); nabla's times
come from its metrics.csv (train_seconds, test_seconds), PyTorch's from
bench/pytorch_models.py (data already in tensors). With --accuracy-seeds,
LeNet also trains 10 epochs per seed on each side and the mean test
accuracies are compared. Finally the time from `nabla train` starting to
the end of its first step (`--max-steps 1`, shipped digits; the whole
process, so an upper bound).

Needs Debian's dataset-fashion-mnist (/usr/share/datasets/fashion-mnist).
Uses only the standard library."""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NABLA = os.path.join(ROOT, "target", "release", "nabla")

# the same optimizer on both sides, per model
SETTINGS = {
    "lenet": ["--optimizer", "sgd", "--lr", "0.001", "--momentum", "0.9"],
    "mlp": ["--optimizer", "sgd", "--lr", "0.01", "--momentum", "0.9"],
    "lstm-rows": ["--optimizer", "adam", "--lr", "0.002"],
    "gru-rows": ["--optimizer", "adam", "--lr", "0.002"],
    "rnn-rows": ["--optimizer", "adam", "--lr", "0.002"],
    # (a tenth of the images: an epoch of this wider CNN is a minute)
    "cnn32": ["--optimizer", "sgd", "--lr", "0.01", "--momentum", "0.9", "--train-fraction", "0.1"],
}

# Benchmark models that are model files rather than zoo names.
MODEL_FILES = {"cnn32": os.path.join(ROOT, "bench", "models", "cnn32.toml")}


def run(cmd, env=None):
    """Runs cmd, returns (stdout, wall seconds, peak RSS of that process in MiB, from wait4)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=ROOT)
    # read the pipes on helper threads so the child never blocks on them

    chunks = {"out": b"", "err": b""}

    def drain(name, f):
        chunks[name] = f.read()

    threads = [threading.Thread(target=drain, args=(n, f)) for n, f in (("out", proc.stdout), ("err", proc.stderr))]
    for t in threads:
        t.start()
    _, status, usage = os.wait4(proc.pid, 0)
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        sys.exit(f"{' '.join(cmd)} failed ({code}):\n{chunks['err'].decode()[-2000:]}")
    return chunks["out"].decode(), wall, usage.ru_maxrss / 1024


def nabla_epoch(model, threads, epochs=1, seed=1, extra=()):
    out_dir = tempfile.mkdtemp(prefix="nabla-bench-")
    try:
        cmd = [NABLA, "train", "--model", MODEL_FILES.get(model, model), "--dataset", "fashion-mnist", "--epochs", str(epochs),
               "--threads", str(threads), "--test-batch-size", "1000", "--seed", str(seed),
               "--out", out_dir] + SETTINGS[model] + list(extra)
        _, _, rss = run(cmd)
        with open(os.path.join(out_dir, "metrics.csv")) as f:
            rows = [line.strip().split(",") for line in f if line.strip()]
        head, last = rows[0], rows[-1]
        col = {name: i for i, name in enumerate(head)}
        return {
            "train": float(last[col["train_seconds"]]),
            "test": float(last[col["test_seconds"]]),
            "accuracy": float(last[col["accuracy"]]),
            "rss": rss,
        }
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)


def torch_epoch(python, model, threads, epochs=1, seed=1, extra=()):
    cmd = [python, os.path.join(ROOT, "bench", "pytorch_models.py"), "--model", model,
           "--threads", str(threads), "--epochs", str(epochs), "--seed", str(seed)] + SETTINGS[model] + list(extra)
    out, _, rss = run(cmd)
    r = json.loads(out.strip().splitlines()[-1])
    return {"train": r["train_seconds"][-1], "test": r["test_seconds"], "accuracy": r["accuracy"], "rss": rss}


def fmt(xs):
    return f"{min(xs):.2f} / {statistics.median(xs):.2f}"


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--python", default=sys.executable, help="a Python with torch installed")
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--models", nargs="+", default=["lenet", "mlp", "lstm-rows"])
    p.add_argument("--accuracy-seeds", type=int, nargs="*", default=[])
    a = p.parse_args()
    if not os.path.isfile(NABLA):
        sys.exit(f"{NABLA} not found: run `cargo build --release --bin nabla` first")
    if not os.path.isdir("/usr/share/datasets/fashion-mnist"):
        sys.exit("Fashion-MNIST not found: apt-get install dataset-fashion-mnist")
    version = subprocess.run([a.python, "-c", "import torch; print(torch.__version__)"],
                             capture_output=True, text=True, check=True).stdout.strip()
    print(f"PyTorch {version}; {os.cpu_count()} CPUs; {a.repeats} alternated processes per side\n")
    print("| model | threads | what | nabla min / median | PyTorch min / median | speed-up (medians) |")
    print("|---|---|---|---|---|---|")
    for threads in a.threads:
        for model in a.models:
            ours, theirs = [], []
            for _ in range(a.repeats):
                ours.append(nabla_epoch(model, threads))
                theirs.append(torch_epoch(a.python, model, threads))
            for what, key, unit in (("train epoch", "train", "s"), ("eval 10,000", "test", "s"),
                                    ("peak RSS", "rss", "MiB")):
                o = [r[key] for r in ours]
                t = [r[key] for r in theirs]
                ratio = statistics.median(t) / statistics.median(o)
                label = f"{ratio:.2f}×" if key != "rss" else f"{1 / ratio:.2f}× PyTorch's"
                print(f"| {model} | {threads} | {what} ({unit}) | {fmt(o)} | {fmt(t)} | {label} |", flush=True)
    if a.accuracy_seeds:
        ours, theirs = [], []
        for seed in a.accuracy_seeds:
            ours.append(nabla_epoch("lenet", a.threads[-1], epochs=10, seed=seed)["accuracy"])
            theirs.append(torch_epoch(a.python, "lenet", a.threads[-1], epochs=10, seed=seed)["accuracy"])
        print(f"\nLeNet after 10 epochs, seeds {a.accuracy_seeds}: nabla "
              f"{', '.join(f'{100 * x:.2f}' for x in ours)} (mean {100 * statistics.mean(ours):.2f}%), "
              f"PyTorch {', '.join(f'{100 * x:.2f}' for x in theirs)} (mean {100 * statistics.mean(theirs):.2f}%)")
    starts = []
    for _ in range(5):
        out_dir = tempfile.mkdtemp(prefix="nabla-start-")
        _, wall, _ = run([NABLA, "train", "--max-steps", "1", "--out", out_dir])
        shutil.rmtree(out_dir, ignore_errors=True)
        starts.append(wall)
    print(f"\n`nabla train --max-steps 1` (start, load the shipped digits, one step, checkpoint, exit): "
          f"min {min(starts):.3f} s, median {statistics.median(starts):.3f} s")


if __name__ == "__main__":
    main()
