#!/usr/bin/env python3
"""nabla's gpt-char against the same model and recipe in PyTorch eager
(bench/pytorch_gpt.py): nanoGPT's CPU configuration (4 layers, 4 heads, 128
wide, context 64, batch 12, no dropout, AdamW lr 1e-3 betas 0.9/0.99,
2,000 steps with 100 of warm-up and a cosine to 1e-4) on the shipped text
split 90/10. The two sides alternate process by process, for each seed and
thread count; each run reports its training seconds (the steps only), the
validation loss on the whole validation split, and its peak resident
memory (/usr/bin/time). Then the generation speed of 500 tokens with the
KV cache and without (the whole context recomputed per token, as nanoGPT's
generate does), from the last nabla run.

    cargo build --release --bin nabla
    python3 bench/gpt_compare.py --python ~/torch/bin/python [--seeds 1 2 3] [--threads 1 2] [--steps 2000]
        [--precision f32|bf16]

--precision bf16 trains nabla with `--precision bf16` and PyTorch inside
torch.autocast("cpu", dtype=torch.bfloat16).
"""
import argparse
import re
import statistics
import subprocess
import tempfile


def timed(cmd, env=None):
    """Runs cmd under /usr/bin/time; returns (stdout, stderr, peak MB)."""
    p = subprocess.run(["/usr/bin/time", "-f", "peak_rss_kb %M"] + cmd, capture_output=True, text=True, env=env)
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{p.stderr}")
    peak = int(re.search(r"peak_rss_kb (\d+)", p.stderr).group(1)) / 1024
    return p.stdout, p.stderr, peak


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--python", default="python3")
    ap.add_argument("--nabla", default="target/release/nabla")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--precision", default="f32", choices=["f32", "bf16"])
    a = ap.parse_args()
    rows = {}
    run_dir = tempfile.mkdtemp(prefix="nabla-gpt-")
    for t in a.threads:
        for seed in a.seeds:
            out, _, peak = timed([a.nabla, "train", "--model", "gpt-char", "--threads", str(t), "--seed", str(seed),
                                  "--max-steps", str(a.steps), "--steps-per-epoch", str(a.steps),
                                  "--log-interval", "1000000", "--precision", a.precision, "--out", run_dir,
                                  "--overwrite"])
            m = re.search(r"validation loss ([\d.]+) nats .* ([\d.]+) s training", out)
            rows.setdefault(("nabla", t), []).append((float(m.group(2)), float(m.group(1)), peak))
            out, _, peak = timed([a.python, "bench/pytorch_gpt.py", "--threads", str(t), "--seed", str(seed),
                                  "--steps", str(a.steps), "--precision", a.precision])
            secs = float(re.search(r"train_seconds ([\d.]+)", out).group(1))
            loss = float(re.search(r"val_loss ([\d.]+)", out).group(1))
            rows.setdefault(("pytorch", t), []).append((secs, loss, peak))
            print(f"threads {t} seed {seed}: nabla {rows[('nabla', t)][-1]}, pytorch {rows[('pytorch', t)][-1]}", flush=True)
    print("\n| threads | nabla s (median) | PyTorch s (median) | nabla speed-up | nabla val loss (mean) | PyTorch val loss (mean) | nabla / PyTorch peak memory |")
    print("|---|---|---|---|---|---|---|")
    for t in a.threads:
        n, p = rows[("nabla", t)], rows[("pytorch", t)]
        ns, ps = statistics.median(r[0] for r in n), statistics.median(r[0] for r in p)
        nl, pl = statistics.mean(r[1] for r in n), statistics.mean(r[1] for r in p)
        nm, pm = max(r[2] for r in n), max(r[2] for r in p)
        print(f"| {t} | {ns:.1f} | {ps:.1f} | {ps / ns:.2f}× | {nl:.4f} | {pl:.4f} | {nm:.0f} / {pm:.0f} MB = {nm / pm:.2f} |")
    print("\n| generation, 500 tokens | tokens/s |")
    print("|---|---|")
    for flag, what in [([], "KV cache"), (["--no-cache"], "whole context recomputed (nanoGPT's loop)")]:
        _, err, _ = timed([a.nabla, "generate", run_dir, "--max-new-tokens", "500", "--seed", "1"] + flag)
        speed = re.search(r"([\d.]+) tokens/s", err).group(1)
        print(f"| {what} | {speed} |")


if __name__ == "__main__":
    main()
