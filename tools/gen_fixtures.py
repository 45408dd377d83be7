#!/usr/bin/env python3
"""Writes the PyTorch reference values the Rust tests compare against.

Each fixture is a small safetensors file under tests/fixtures/: the inputs,
an upstream gradient `grad_out`, PyTorch's output `out` and the gradient of
every input (`grad_<name>`). Op parameters go in the file's metadata.

    python3 -m venv ~/torch && ~/torch/bin/pip install torch safetensors
    ~/torch/bin/python tools/gen_fixtures.py

The files are committed: CI never needs PyTorch. This script is their
provenance; rerunning it with the same torch version gives the same files.
"""
import os

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures")
torch.manual_seed(0)
torch.set_num_threads(1)


def rand(*shape):
    return torch.randn(shape, dtype=torch.float32)


def save(name, inputs, fn, meta=None):
    """Runs fn(**inputs), backprops a random upstream gradient, saves all."""
    leaves = {k: v.clone().requires_grad_(True) for k, v in inputs.items()}
    out = fn(**leaves)
    grad_out = rand(*out.shape)
    out.backward(grad_out)
    tensors = {k: v.detach().contiguous() for k, v in inputs.items()}
    tensors["out"] = out.detach().contiguous()
    tensors["grad_out"] = grad_out.contiguous()
    for k, v in leaves.items():
        tensors["grad_" + k] = v.grad.contiguous()
    meta = {k: str(v) for k, v in (meta or {}).items()}
    meta["torch"] = torch.__version__
    save_file(tensors, os.path.join(OUT, name + ".safetensors"), metadata=meta)


def main():
    os.makedirs(OUT, exist_ok=True)

    save("matmul_2d", {"a": rand(5, 7), "b": rand(7, 3)}, lambda a, b: a @ b)
    save("matmul_batched", {"a": rand(2, 1, 3, 4), "b": rand(3, 4, 5)}, lambda a, b: a @ b)

    convs = [
        ("conv2d_lenet1", (4, 1, 28, 28), (6, 1, 5, 5), dict(stride=1, padding=2, dilation=1, groups=1)),
        ("conv2d_lenet2", (4, 6, 14, 14), (16, 6, 5, 5), dict(stride=1, padding=0, dilation=1, groups=1)),
        ("conv2d_s2p1", (2, 3, 9, 8), (4, 3, 3, 3), dict(stride=2, padding=1, dilation=1, groups=1)),
        ("conv2d_d2p2", (2, 3, 9, 8), (4, 3, 3, 3), dict(stride=1, padding=2, dilation=2, groups=1)),
        ("conv2d_g2", (2, 4, 7, 7), (6, 2, 3, 3), dict(stride=1, padding=1, dilation=1, groups=2)),
    ]
    for name, xs, ws, p in convs:
        save(name, {"x": rand(*xs), "w": rand(*ws), "b": rand(ws[0])},
             lambda x, w, b, p=p: F.conv2d(x, w, b, **p), p)

    pools = [
        ("max_pool2d_k2", dict(kernel=2, stride=2, padding=0)),
        ("max_pool2d_k3s2p1", dict(kernel=3, stride=2, padding=1)),
    ]
    for name, p in pools:
        save(name, {"x": rand(2, 3, 8, 9)},
             lambda x, p=p: F.max_pool2d(x, p["kernel"], p["stride"], p["padding"]), p)
    p = dict(kernel=3, stride=2, padding=1)
    save("avg_pool2d_k3s2p1", {"x": rand(2, 3, 8, 9)},
         lambda x: F.avg_pool2d(x, 3, 2, 1), p)

    save("log_softmax_dim1", {"x": rand(6, 10) * 3}, lambda x: F.log_softmax(x, dim=1), {"dim": 1})
    save("log_softmax_dim0", {"x": rand(6, 10) * 3}, lambda x: F.log_softmax(x, dim=0), {"dim": 0})
    save("softmax_dim1", {"x": rand(6, 10) * 3}, lambda x: F.softmax(x, dim=1), {"dim": 1})

    unary = {
        "exp": torch.exp,
        "log": lambda x: torch.log(x.abs() + 0.1),
        "sqrt": lambda x: torch.sqrt(x.abs() + 0.1),
        "sigmoid": torch.sigmoid,
        "tanh": torch.tanh,
        "gelu": F.gelu,
        "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"),
        "relu": F.relu,
        "leaky_relu": lambda x: F.leaky_relu(x, 0.1),
    }
    for name, fn in unary.items():
        save("unary_" + name, {"x": rand(4, 5) * 2}, lambda x, fn=fn: fn(x))

    # A small composed graph: a two-layer MLP with cross-entropy from logits.
    labels = torch.tensor([0, 2, 1, 1, 0, 2, 2, 1], dtype=torch.float32)

    def mlp(x, w1, b1, w2, b2):
        h = F.relu(x @ w1.t() + b1)
        logp = F.log_softmax(h @ w2.t() + b2, dim=1)
        return F.nll_loss(logp, labels.long())

    save("mlp_cross_entropy", {"x": rand(8, 6), "w1": rand(5, 6), "b1": rand(5),
                                "w2": rand(3, 5), "b2": rand(3)}, mlp)
    # labels travel in a second file (they take no gradient)
    save_file({"labels": labels}, os.path.join(OUT, "mlp_cross_entropy_labels.safetensors"))


if __name__ == "__main__":
    main()
