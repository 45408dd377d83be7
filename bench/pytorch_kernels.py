#!/usr/bin/env python3
"""PyTorch side of crates/nabla-core/benches/kernels/main.rs: the same cases,
the same timing rule (best of repetitions after a warm-up), the same output
format. Usage: python3 bench/pytorch_kernels.py THREADS [CASE ...] (cases
filtered by name as the Rust side filters them)"""
import sys
import time

import torch
import torch.nn.functional as F


def best_time(budget, f):
    f()
    best, reps, start = float("inf"), 0, time.perf_counter()
    while reps < 5 or time.perf_counter() - start < budget:
        t = time.perf_counter()
        f()
        best = min(best, time.perf_counter() - t)
        reps += 1
    return best


def main():
    torch.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 1)
    torch.manual_seed(0)
    cases = sys.argv[2:]

    def wanted(name):
        return not cases or any(c in name for c in cases)

    print(f"# pytorch {torch.__version__} kernels, {torch.get_num_threads()} threads")
    for L in (256, 1024, 4096):
        name = f"attention_causal_{L}_fwd_bwd"
        if not wanted(name):
            continue
        q, k, v = (torch.randn(1, 4, L, 64, requires_grad=True) for _ in range(3))

        def attention():
            F.scaled_dot_product_attention(q, k, v, is_causal=True).sum().backward()
            q.grad = k.grad = v.grad = None

        print(f"{name} {best_time(1.0, attention) * 1e3:.3f} ms")
    for n in (256, 512, 1024):
        if not wanted(f"matmul_{n}"):
            continue
        a, b = torch.randn(n, n), torch.randn(n, n)
        t = best_time(1.0, lambda: a @ b)
        print(f"matmul_{n} {2 * n**3 / t / 1e9:.1f} GFLOP/s")
    if not wanted("conv2d_lenet_fwd_bwd"):
        return
    x1 = torch.randn(64, 1, 28, 28)
    w1 = torch.randn(6, 1, 5, 5, requires_grad=True)
    b1 = torch.randn(6, requires_grad=True)
    x2 = torch.randn(64, 6, 14, 14, requires_grad=True)
    w2 = torch.randn(16, 6, 5, 5, requires_grad=True)
    b2 = torch.randn(16, requires_grad=True)
    g1, g2 = torch.randn(64, 6, 28, 28), torch.randn(64, 16, 10, 10)

    def conv():
        F.conv2d(x1, w1, b1, padding=2).backward(g1)
        F.conv2d(x2, w2, b2).backward(g2)
        for p in (w1, b1, x2, w2, b2):
            p.grad = None

    print(f"conv2d_lenet_fwd_bwd {best_time(1.0, conv) * 1e3:.3f} ms")


if __name__ == "__main__":
    main()
