#!/usr/bin/env python3
"""nabla's ports of PyTorch's examples (crates/nabla/examples/pytorch/)
beside the PyTorch programs (bench/pytorch_examples/), on the same data and
settings, the two alternated at each thread count. Prints a Markdown table
per example: the last epoch's test loss and accuracy, and the best and
median training time per epoch.

    cargo build --release -p nabla --examples
    python3 bench/pytorch_examples.py --python ~/torch/bin/python [--threads 1 2] [--epochs 3]

Uses only the standard library."""
import argparse
import os
import re
import statistics
import subprocess
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = {
    # name: (nabla binary, its flags, PyTorch script)
    "mnist": ("pytorch_mnist", ["--log-interval", "1000"], "bench/pytorch_examples/mnist.py"),
    "mnist_rnn": ("pytorch_mnist_rnn", ["--log-interval", "1000"], "bench/pytorch_examples/mnist_rnn.py"),
    "regression": ("pytorch_regression", [], "bench/pytorch_examples/regression.py"),
    "vae": ("pytorch_vae", ["--log-interval", "1000", "--out", "/tmp/nabla-vae-results"], "bench/pytorch_examples/vae.py"),
    "mnist_forward_forward": ("pytorch_mnist_forward_forward", ["--log-interval", "1000"],
                              "bench/pytorch_examples/mnist_forward_forward.py"),
    "dcgan": ("pytorch_dcgan", ["--out", "/tmp/nabla-dcgan"], "bench/pytorch_examples/dcgan.py"),
    "mnist_hogwild": ("pytorch_mnist_hogwild", ["--log-interval", "100000"], "bench/pytorch_examples/mnist_hogwild.py"),
    "word_language_model": ("pytorch_word_language_model", ["--log-interval", "100000"],
                            "bench/pytorch_examples/word_language_model.py"),
    # (counted in L-BFGS steps, not epochs; PyTorch in float64 as the original)
    "time_sequence_prediction": ("pytorch_time_sequence_prediction", ["--out", "/tmp/nabla-tsp"],
                                 "bench/pytorch_examples/time_sequence_prediction.py"),
}
STEPS_NOT_EPOCHS = {"time_sequence_prediction"}


def regression(python, seeds, threads):
    """Batches to converge over `seeds` (random targets differ between the
    two generators, so the distributions are compared), and time per run."""
    rows = {"nabla": [], "PyTorch": []}
    for seed in seeds:
        env = dict(os.environ, NABLA_NUM_THREADS=str(threads))
        start = time.perf_counter()
        out = run([os.path.join(ROOT, "target", "release", "examples", "pytorch_regression"), "--seed", str(seed)], env)
        seconds = time.perf_counter() - start
        loss, batches = re.search(r"Loss: ([0-9.]+) after (\d+) batches", out).groups()
        rows["nabla"].append((int(batches), seconds))
        start = time.perf_counter()
        out = run([python, EXAMPLES["regression"][2], "--seed", str(seed), "--threads", str(threads)], dict(os.environ))
        # PyTorch's own timing of its loop (its import alone takes seconds)
        loss, batches, seconds = re.search(r"Loss: ([0-9.]+) after (\d+) batches in ([0-9.]+) s", out).groups()
        rows["PyTorch"].append((int(batches), float(seconds)))
    return rows


def run(cmd, env):
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=True).stdout
    return out


def nabla(binary, flags, epochs, threads, count="--epochs"):
    env = dict(os.environ, NABLA_NUM_THREADS=str(threads))
    out = run([os.path.join(ROOT, "target", "release", "examples", binary), count, str(epochs)] + flags, env)
    times = [float(t) for t in re.findall(r"(?:epoch|step) \d+: ([0-9.]+) s training", out)]
    tests = re.findall(r"Average loss: ([0-9.]+), Accuracy: (\d+)/(\d+)", out)
    if tests:
        return float(tests[-1][0]), f"{tests[-1][1]}/{tests[-1][2]}", times
    return float(re.findall(r"(?:Test set|test) loss: ([0-9.e-]+)", out)[-1]), "", times


def torch_side(python, script, epochs, threads, count="--epochs"):
    out = run([python, script, count, str(epochs), "--threads", str(threads)], dict(os.environ))
    rows = re.findall(r"test loss ([0-9.]+) accuracy (\d+)/(\d+) train ([0-9.]+) s", out)
    if rows:
        loss, correct, n, _ = rows[-1]
        return float(loss), f"{correct}/{n}", [float(r[3]) for r in rows]
    times = [float(t) for t in re.findall(r"(?:epoch|step) \d+: ([0-9.]+) s training", out)]
    return float(re.findall(r"(?:Test set|test) loss: ([0-9.e-]+)", out)[-1]), "", times


def forward_forward(python, epochs, threads):
    """Train and test errors and the seconds per layer of each side."""
    out = {}
    for side in ("nabla", "PyTorch"):
        if side == "nabla":
            env = dict(os.environ, NABLA_NUM_THREADS=str(threads))
            text = run([os.path.join(ROOT, "target", "release", "examples", "pytorch_mnist_forward_forward"),
                        "--epochs", str(epochs), "--log-interval", "100000"], env)
        else:
            text = run([python, EXAMPLES["mnist_forward_forward"][2], "--epochs", str(epochs),
                        "--log-interval", "100000", "--threads", str(threads)], dict(os.environ))
        errors = [float(e) for e in re.findall(r"(?:train|test) error: ([0-9.]+)", text)]
        layers = [float(t) for t in re.findall(r"layer \d+: ([0-9.]+) s training", text)]
        out[side] = (errors[0], errors[1], layers)
    return out


def hogwild(python, epochs, runs=2):
    """Two workers over one model: each side's training time and accuracy."""
    rows = []
    for threads in (1, 2):
        for _ in range(runs):
            env = dict(os.environ, NABLA_NUM_THREADS=str(threads))
            out = run([os.path.join(ROOT, "target", "release", "examples", "pytorch_mnist_hogwild"),
                       "--epochs", str(epochs), "--log-interval", "100000"], env)
            secs = re.search(r"([0-9.]+) s training", out).group(1)
            acc = re.search(r"Accuracy: (\d+/\d+)", out).group(1)
            rows.append(("nabla", str(threads), secs, acc))
    for _ in range(runs):
        out = run([python, EXAMPLES["mnist_hogwild"][2], "--epochs", str(epochs)], dict(os.environ))
        loops = max(float(t) for t in re.findall(r"([0-9.]+) s in its loop", out))
        total = re.search(r"([0-9.]+) s training", out).group(1)
        acc = re.search(r"Accuracy: (\d+/\d+)", out).group(1)
        rows.append(("PyTorch", "1 per process", f"{loops:.2f} (loop); {total} with the processes' start", acc))
    return rows


def gan(python, epochs, threads):
    """The last logged D and G losses and the epoch times of each side."""
    env = dict(os.environ, NABLA_NUM_THREADS=str(threads))
    sides = {
        "nabla": run([os.path.join(ROOT, "target", "release", "examples", "pytorch_dcgan"), "--epochs", str(epochs),
                      "--out", "/tmp/nabla-dcgan"], env),
        "PyTorch": run([python, EXAMPLES["dcgan"][2], "--epochs", str(epochs), "--threads", str(threads)],
                       dict(os.environ)),
    }
    out = {}
    for side, text in sides.items():
        d, g = re.findall(r"D_loss: ([0-9.]+) \| G_loss: ([0-9.]+)", text)[-1]
        times = [float(t) for t in re.findall(r"epoch \d+: ([0-9.]+) s training", text)]
        out[side] = (float(d), float(g), times)
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--python", required=True)
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--examples", nargs="+", default=list(EXAMPLES))
    a = p.parse_args()
    for name in a.examples:
        binary, flags, script = EXAMPLES[name]
        if name == "dcgan":
            print(f"\n### dcgan ({a.epochs} epochs)\n")
            print("| threads | side | D_loss / G_loss (last logged) | epoch s (median) | PyTorch / nabla |")
            print("|---|---|---|---|---|")
            for t in a.threads:
                r = gan(a.python, a.epochs, t)
                ratio = statistics.median(r["PyTorch"][2]) / statistics.median(r["nabla"][2])
                for side, (d, g, times) in r.items():
                    mark = f"{ratio:.2f}×" if side == "nabla" else ""
                    print(f"| {t} | {side} | {d:.3f} / {g:.2f} | {statistics.median(times):.1f} | {mark} |")
            continue
        if name == "mnist_hogwild":
            print(f"\n### mnist_hogwild (2 workers, {a.epochs} epochs each)\n")
            print("| side | pool threads | training s | test accuracy |")
            print("|---|---|---|---|")
            for side, threads, secs, acc in hogwild(a.python, a.epochs):
                print(f"| {side} | {threads} | {secs} | {acc} |")
            continue
        if name == "mnist_forward_forward":
            print(f"\n### mnist_forward_forward ({a.epochs} epochs a layer)\n")
            print("| threads | side | train error | test error | s per layer | PyTorch / nabla |")
            print("|---|---|---|---|---|---|")
            for t in a.threads:
                r = forward_forward(a.python, a.epochs, t)
                ratio = sum(r["PyTorch"][2]) / sum(r["nabla"][2])
                for side, (tr, te, layers) in r.items():
                    times = " / ".join(f"{x:.1f}" for x in layers)
                    print(f"| {t} | {side} | {tr:.4f} | {te:.4f} | {times} | {f'{ratio:.2f}×' if side == 'nabla' else ''} |")
            continue
        if name == "regression":
            print("\n### regression (seeds 1-10; nabla: the whole process, PyTorch: its loop alone)\n")
            print("| threads | side | batches to loss < 1e-3: median, mean (min-max) | s per run (median) |")
            print("|---|---|---|---|")
            for t in a.threads:
                rows = regression(a.python, range(1, 11), t)
                for side, r in rows.items():
                    b = [x for x, _ in r]
                    print(f"| {t} | {side} | {statistics.median(b):.0f}, {statistics.mean(b):.0f} ({min(b)}-{max(b)}) | {statistics.median(s for _, s in r):.3f} |")
            continue
        print(f"\n### {name} ({a.epochs} epochs)\n")
        print("| threads | side | test loss | accuracy | epoch s (best / median) | PyTorch / nabla |")
        print("|---|---|---|---|---|---|")
        for t in a.threads:
            count = "--steps" if name in STEPS_NOT_EPOCHS else "--epochs"
            n_loss, n_acc, n_times = nabla(binary, flags, a.epochs, t, count)
            p_loss, p_acc, p_times = torch_side(a.python, script, a.epochs, t, count)
            ratio = statistics.median(p_times) / statistics.median(n_times)
            print(f"| {t} | nabla | {n_loss:.4g} | {n_acc} | {min(n_times):.2f} / {statistics.median(n_times):.2f} | {ratio:.2f}× |")
            print(f"| {t} | PyTorch | {p_loss:.4g} | {p_acc} | {min(p_times):.2f} / {statistics.median(p_times):.2f} | |")


if __name__ == "__main__":
    main()
