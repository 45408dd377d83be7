#!/usr/bin/env python3
"""bf16 mixed-precision training (issue 22): nabla's `--precision bf16`
against its own f32 and against PyTorch's CPU autocast, one training epoch
of Fashion-MNIST per process, the four sides alternated process by
process (nabla f32, nabla bf16, PyTorch f32, PyTorch bf16, again …) at
each thread count. Prints a Markdown table of min / median training
seconds and the ratios of medians.

    cargo build --release --bin nabla
    python3 bench/bf16.py --python ~/torch/bin/python [--threads 1 2] [--rounds 3]
        [--models mlp lenet lstm-rows] [--accuracy-seeds 1 2 3 --accuracy-epochs 5]

(--rounds 0 runs the accuracy part alone.)

With --accuracy-seeds each model also trains --accuracy-epochs epochs per
seed at f32 and at bf16 in nabla, and the final test accuracies are shown
side by side with their mean difference.

Needs Debian's dataset-fashion-mnist (/usr/share/datasets/fashion-mnist).
"""
import argparse
import os
import statistics
import subprocess
import sys

from compare import NABLA, fmt, nabla_epoch, torch_epoch

SIDES = [
    ("nabla f32", "nabla", ["--precision", "f32"]),
    ("nabla bf16", "nabla", ["--precision", "bf16"]),
    ("PyTorch f32", "torch", ["--precision", "f32"]),
    ("PyTorch bf16", "torch", ["--precision", "bf16"]),
]


def cpu_name():
    info = {}
    with open("/proc/cpuinfo") as f:
        for line in f:
            if ":" in line:
                key, value = line.split(":", 1)
                info.setdefault(key.strip(), value.strip())
    flags = [x for x in info.get("flags", "").split() if x in ("avx2", "avx512f", "avx512_bf16")]
    return (f"{info.get('model name', '?')} (family {info.get('cpu family', '?')}, "
            f"model {info.get('model', '?')}; {' '.join(flags)})")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--python", default=sys.executable, help="a Python with torch installed")
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--models", nargs="+", default=["mlp", "lenet", "lstm-rows"])
    p.add_argument("--accuracy-seeds", type=int, nargs="*", default=[])
    p.add_argument("--accuracy-epochs", type=int, default=5)
    a = p.parse_args()
    if not os.path.isfile(NABLA):
        sys.exit(f"{NABLA} not found: run `cargo build --release --bin nabla` first")
    version = subprocess.run([a.python, "-c", "import torch; print(torch.__version__)"],
                             capture_output=True, text=True, check=True).stdout.strip()
    print(f"CPU: {cpu_name()}; PyTorch {version}; {a.rounds} alternated rounds\n")
    if a.rounds > 0:
        print("| model | threads | nabla f32 | nabla bf16 | PyTorch f32 | PyTorch bf16 "
              "| nabla bf16 vs f32 | nabla bf16 vs PyTorch bf16 |")
        print("|---|---|---|---|---|---|---|---|")
    for model in a.models if a.rounds > 0 else []:
        for threads in a.threads:
            times = {name: [] for name, _, _ in SIDES}
            for _ in range(a.rounds):
                for name, side, extra in SIDES:
                    r = (nabla_epoch(model, threads, extra=extra) if side == "nabla"
                         else torch_epoch(a.python, model, threads, extra=extra))
                    times[name].append(r["train"])
            med = {k: statistics.median(v) for k, v in times.items()}
            cells = " | ".join(fmt(times[name]) for name, _, _ in SIDES)
            print(f"| {model} | {threads} | {cells} | {med['nabla f32'] / med['nabla bf16']:.2f}× "
                  f"| {med['PyTorch bf16'] / med['nabla bf16']:.2f}× |", flush=True)
    if a.accuracy_seeds:
        print(f"\nTest accuracy after {a.accuracy_epochs} epochs (nabla, {a.threads[-1]} threads):\n")
        print("| model | seeds | f32 | bf16 | mean difference (points) |")
        print("|---|---|---|---|---|")
        for model in a.models:
            acc = {}
            for precision in ("f32", "bf16"):
                acc[precision] = [100 * nabla_epoch(model, a.threads[-1], epochs=a.accuracy_epochs, seed=s,
                                                    extra=["--precision", precision])["accuracy"]
                                  for s in a.accuracy_seeds]
            diff = statistics.mean(acc["bf16"]) - statistics.mean(acc["f32"])
            show = {k: ", ".join(f"{x:.2f}" for x in v) for k, v in acc.items()}
            print(f"| {model} | {a.accuracy_seeds} | {show['f32']} | {show['bf16']} | {diff:+.2f} |", flush=True)


if __name__ == "__main__":
    main()
