#!/usr/bin/env python3
"""Random programs against PyTorch: the fixtures of
crates/nabla-nn/tests/random_programs.rs.

Each program is a chain of 3-8 ops drawn at random (views, elementwise,
reductions, softmax, matmul, conv2d, pooling, cat/gather, every loss) over
seeded inputs that look for numerical edges on purpose: ties, zeros, kinks,
huge and tiny magnitudes. PyTorch runs it in float32 and in float64; the
file keeps the inputs, the steps, the float64 value of every intermediate
and the gradient of every input, each with the largest deviation from
float64 of the float32 run and of float64 runs with float32-sized rounding
noise in every step's value and gradient, from which the Rust test derives
its tolerance (where float32 overflows or gives NaN, that is the
expected value).

    python3 -m venv ~/torch && ~/torch/bin/pip install torch
    ~/torch/bin/python tools/gen_random_programs.py                  # the committed set
    ~/torch/bin/python tools/gen_random_programs.py --seed 7 --count 20000 \\
        --out /tmp/more.txt.gz
    NABLA_RANDOM_PROGRAMS=/tmp/more.txt.gz cargo test -p nabla-nn --test random_programs

Format (text, gzip): one line each,
    P <number>                                   a program starts
    I <id> <g|c> <shape> <values…>               an input: g takes a gradient, c is a constant
    S <id> <op> <input ids, comma-separated> [key=value …]
    V <id> <shape> <err> <either> <values…>      expected value of step <id>
    U <values…>                                  upstream gradient of the last step
    G <id> <err> <either> <values…>              expected gradient of input <id>
    E                                            the program ends
A shape is `2x3x4`, or `-` for a 0-d tensor; lists in parameters are
comma-separated. <err> is the deviation the tolerance grows with; <either>
lists (or `-`) the positions where PyTorch's float32 run overflowed but
float64 did not: a float32 program may give any non-finite value there,
or the finite one.
"""
import argparse
import collections
import gzip
import io
import math
import os
import random

import torch
import torch.nn.functional as F

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "random_programs.txt.gz")

UNARY = ["relu", "sigmoid", "tanh", "exp", "abs", "neg", "gelu", "gelu_tanh", "silu",
         "mish", "selu", "log", "sqrt", "log1p", "expm1"]
BINARY = ["add", "sub", "mul", "div", "maximum", "minimum", "pow"]
REDUCE = ["sum", "mean", "max", "min", "var", "std"]
LOSSES = ["cross_entropy", "nll_loss", "soft_cross_entropy", "mse_loss", "l1_loss",
          "huber_loss", "bce_loss", "bce_with_logits"]


def ints(p):
    return [int(v) for v in p.split(",")] if p else []


def apply(op, xs, p):
    """Runs one step in torch; `xs` are the input tensors, `p` the
    parameters as strings (exactly what the Rust test reads)."""
    x = xs[0]
    if op in ("relu", "sigmoid", "tanh", "exp", "abs", "neg", "log", "sqrt", "log1p", "expm1"):
        return getattr(torch, op)(x)
    if op == "gelu":
        return F.gelu(x)
    if op == "gelu_tanh":
        return F.gelu(x, approximate="tanh")
    if op == "silu":
        return F.silu(x)
    if op == "mish":
        return F.mish(x)
    if op == "selu":
        return F.selu(x)
    if op == "elu":
        return F.elu(x, float(p["alpha"]))
    if op == "leaky_relu":
        return F.leaky_relu(x, float(p["slope"]))
    if op == "softplus":
        return F.softplus(x, float(p["beta"]), float(p["threshold"]))
    if op == "clamp":
        return torch.clamp(x, float(p["lo"]), float(p["hi"]))
    if op == "powf":
        return x.pow(float(p["e"]))
    if op == "affine":
        return x * float(p["mul"]) + float(p["add"])
    if op in ("add", "sub", "mul", "div", "maximum", "minimum", "pow"):
        return getattr(torch, op)(x, xs[1])
    if op == "where":
        return torch.where(xs[0] != 0, xs[1], xs[2])
    if op == "masked_fill":
        return x.masked_fill(xs[1] != 0, float(p["value"]))
    if op == "permute":
        return x.permute(ints(p["perm"]))
    if op == "transpose":
        return x.transpose(int(p["d0"]), int(p["d1"]))
    if op == "reshape":
        return x.reshape(ints(p["shape"]))
    if op == "narrow":
        return x.narrow(int(p["dim"]), int(p["start"]), int(p["len"]))
    if op == "unsqueeze":
        return x.unsqueeze(int(p["dim"]))
    if op == "expand":
        return x.expand(ints(p["shape"]))
    if op == "flatten":
        return x.flatten(int(p["start"]), int(p["end"]))
    if op in REDUCE:
        dims, keep = ints(p["dims"]), p["keepdim"] == "1"
        dim = dims if dims else None
        # (an empty list of dims reduces them all, keepdim or not)
        if op == "sum":
            return x.sum(dim=dims, keepdim=keep)
        if op == "mean":
            return x.mean(dim=dims, keepdim=keep)
        if op == "max":
            return x.amax(dim=dims, keepdim=keep)
        if op == "min":
            return x.amin(dim=dims, keepdim=keep)
        c = int(p["correction"])
        return getattr(torch, op)(x, dim=dim, correction=c, keepdim=keep)
    if op == "softmax":
        return F.softmax(x, int(p["dim"]))
    if op == "log_softmax":
        return F.log_softmax(x, int(p["dim"]))
    if op == "matmul":
        return x @ xs[1]
    if op == "linear":
        return F.linear(x, xs[1], xs[2] if len(xs) > 2 else None)
    if op == "conv2d":
        s, pd, d = ints(p["stride"]), ints(p["padding"]), ints(p["dilation"])
        return F.conv2d(x, xs[1], xs[2] if len(xs) > 2 else None, tuple(s), tuple(pd),
                        tuple(d), int(p["groups"]))
    if op in ("max_pool2d", "avg_pool2d"):
        k, s, pd = ints(p["kernel"]), ints(p["stride"]), ints(p["padding"])
        ceil = p["ceil"] == "1"
        if op == "max_pool2d":
            return F.max_pool2d(x, tuple(k), tuple(s), tuple(pd), ceil_mode=ceil)
        return F.avg_pool2d(x, tuple(k), tuple(s), tuple(pd), ceil_mode=ceil,
                            count_include_pad=p["count_pad"] == "1")
    if op == "cat":
        return torch.cat(xs, int(p["dim"]))
    if op == "stack":
        return torch.stack(xs, int(p["dim"]))
    if op == "gather":
        return x.gather(int(p["dim"]), xs[1].long())
    if op == "index_select":
        return x.index_select(int(p["dim"]), xs[1].long())
    red = p.get("reduction", "mean")
    if op in ("cross_entropy", "soft_cross_entropy"):
        w = xs[2] if len(xs) > 2 else None
        t = xs[1] if op == "soft_cross_entropy" else xs[1].long()
        return F.cross_entropy(x, t, weight=w, reduction=red,
                               label_smoothing=float(p["smoothing"]))
    if op == "nll_loss":
        return F.nll_loss(x, xs[1].long(), weight=xs[2] if len(xs) > 2 else None, reduction=red)
    if op == "mse_loss":
        return F.mse_loss(x, xs[1], reduction=red)
    if op == "l1_loss":
        return F.l1_loss(x, xs[1], reduction=red)
    if op == "huber_loss":
        return F.huber_loss(x, xs[1], reduction=red, delta=float(p["delta"]))
    if op == "bce_loss":
        return F.binary_cross_entropy(x, xs[1], reduction=red)
    if op == "bce_with_logits":
        return F.binary_cross_entropy_with_logits(x, xs[1], reduction=red)
    raise ValueError(op)


class NoisyGradient(torch.autograd.Function):
    """The identity, whose gradient is multiplied by 1 + u on the way back."""

    @staticmethod
    def forward(ctx, x, u):
        ctx.save_for_backward(u)
        return x.view_as(x)

    @staticmethod
    def backward(ctx, g):
        (u,) = ctx.saved_tensors
        return g * (1 + u), None


class Program:
    """Inputs and steps, evaluated in float64 as they are drawn (so that a
    step can look at its operands' values: domains, sizes)."""

    def __init__(self, rng):
        self.rng = rng
        self.inputs = {}   # id -> (kind, float32 tensor)
        self.steps = []    # (id, op, input ids, params)
        self.values = {}   # id -> float64 tensor
        self.next_id = 0

    def new_id(self):
        self.next_id += 1
        return self.next_id - 1

    def input(self, t, grad=True):
        i = self.new_id()
        t = t.to(torch.float32)
        self.inputs[i] = ("g" if grad else "c", t)
        self.values[i] = t.to(torch.float64)
        return i

    def step(self, op, ids, **p):
        p = {k: (",".join(str(v) for v in x) if isinstance(x, (list, tuple)) else str(x))
             for k, x in p.items()}
        y = apply(op, [self.values[i] for i in ids], p)
        i = self.new_id()
        self.steps.append((i, op, ids, p))
        self.values[i] = y
        return i

    def shape(self, i):
        return list(self.values[i].shape)

    def floats(self):
        """Ids of the values steps may take: gradient inputs and steps."""
        return [i for i in self.values if self.inputs.get(i, ("g",))[0] == "g"]

    def run(self, dtype, upstream, noise=None, inexact=None):
        """Every step's value and every gradient input's gradient.

        With `noise` (a seed), float32's rounding is played in float64: every
        step's value is multiplied by 1 + u·2⁻²³ (u uniform in [−1, 1]) where
        `inexact[id]` says float32 rounded it (float32 and float64 differ
        there; exact values, such as ties of small integers, stay exact, so
        no decision of the forward pass flips that float32 would keep), and
        its gradient likewise as it flows back, and each use of a value by a
        step too."""
        leaves = {i: t.to(dtype).detach().clone().requires_grad_(k == "g")
                  for i, (k, t) in self.inputs.items()}
        env = dict(leaves)
        gen = torch.Generator().manual_seed(noise) if noise is not None else None

        def jitter(shape):
            return (torch.rand(shape, generator=gen, dtype=dtype) * 2 - 1) * 2.0 ** -23

        def use(j):
            """Input j as a step takes it: with noise, each use's gradient
            gets its own, before the uses' gradients are summed (where
            they cancel, the sum is as uncertain as its terms)."""
            x = env[j]
            if gen is None or not x.requires_grad:
                return x
            return NoisyGradient.apply(x, jitter(x.shape))

        for i, op, ids, p in self.steps:
            env[i] = apply(op, [use(j) for j in ids], p)
            if gen is not None:
                env[i] = env[i] * (1 + jitter(env[i].shape) * inexact[i])
                if op in ("sigmoid", "softmax"):
                    env[i] = env[i].clamp(0, 1)  # (probabilities stay probabilities)
                if env[i].requires_grad:
                    u = jitter(env[i].shape)
                    env[i].register_hook(lambda g, u=u: g * (1 + u))
        last = env[self.steps[-1][0]]
        if last.requires_grad:
            last.backward(upstream.to(dtype))
        grads = {i: (t.grad if t.grad is not None else torch.zeros_like(t))
                 for i, t in leaves.items() if t.requires_grad}
        return {i: env[i].detach() for i, _, _, _ in self.steps}, grads


def draw_values(rng, shape):
    """Values that hunt for edges: normal, small integers (ties and zeros),
    huge, tiny, or magnitudes spread over six decades."""
    kind = rng.choice(["normal", "normal", "ints", "huge", "tiny", "spread"])
    n = math.prod(shape)
    if kind == "normal":
        v = [rng.gauss(0, 1) for _ in range(n)]
    elif kind == "ints":
        v = [float(rng.randint(-2, 2)) for _ in range(n)]
    elif kind == "huge":
        v = [rng.gauss(0, 1) * 10 ** rng.uniform(2, 4) for _ in range(n)]
    elif kind == "tiny":
        v = [rng.gauss(0, 1) * 10 ** -rng.uniform(3, 6) for _ in range(n)]
    else:
        v = [rng.gauss(0, 1) * 10 ** rng.uniform(-3, 3) for _ in range(n)]
    return torch.tensor(v, dtype=torch.float64).reshape(shape)


def rand_shape(rng, lo=0, hi=4, size_hi=4):
    return [rng.randint(1, size_hi) for _ in range(rng.randint(lo, hi))]


def broadcast_partner(rng, shape):
    """A shape that broadcasts against `shape`: some dims set to 1, some
    leading ones dropped, now and then one more leading dim."""
    s = [1 if rng.random() < 0.3 else d for d in shape]
    s = s[rng.randint(0, len(s)):] if rng.random() < 0.3 else s
    if rng.random() < 0.15:
        s = [rng.randint(1, 3)] + s
    return s


def broadcastable(a, b):
    try:
        torch.broadcast_shapes(tuple(a), tuple(b))
        return True
    except RuntimeError:
        return False


def draw_step(prog):
    rng = prog.rng
    # mostly the last value, so that programs are chains
    x = prog.steps[-1][0] if prog.steps and rng.random() < 0.7 else rng.choice(prog.floats())
    sh = prog.shape(x)
    r = len(sh)
    kind = rng.choices(["unary", "param", "binary", "view", "reduce", "softmax", "matmul",
                        "conv", "pool", "cat", "index", "where"],
                       [14, 8, 12, 16, 10, 5, 6, 4, 4, 4, 4, 3])[0]
    if kind == "unary":
        op = rng.choice(UNARY)
        v = prog.values[x]
        if op in ("log", "sqrt", "log1p") and (v < 0).any():
            x = prog.step("abs", [x])
            if rng.random() < 0.7:
                x = prog.step("affine", [x], mul=1.0, add=rng.choice([0.1, 1.0]))
        return prog.step(op, [x])
    if kind == "param":
        op = rng.choice(["elu", "leaky_relu", "softplus", "clamp", "powf", "affine"])
        if op == "elu":
            return prog.step(op, [x], alpha=rng.choice([1.0, 0.5, 1.7]))
        if op == "leaky_relu":
            return prog.step(op, [x], slope=rng.choice([0.01, 0.2, -0.5]))
        if op == "softplus":
            return prog.step(op, [x], beta=rng.choice([1.0, 2.0, 0.5]),
                             threshold=rng.choice([20.0, 1.0, 5.0]))
        if op == "clamp":
            lo = rng.choice([-1.0, 0.0, -0.5, -2.0])
            return prog.step(op, [x], lo=lo, hi=lo + rng.choice([0.0, 0.5, 1.0, 3.0]))
        if op == "powf":
            e = rng.choice([0.0, 1.0, 2.0, 3.0, -1.0, 0.5, 2.5, -0.5])
            if e < 0 and (prog.values[x] == 0).any():
                # (1/±0 is ±∞ by the sign of a zero, which sums and
                # products leave to the order of their terms)
                e = -e
            if e != int(e) and (prog.values[x] < 0).any():
                x = prog.step("abs", [x])
            return prog.step(op, [x], e=e)
        return prog.step(op, [x], mul=rng.choice([2.0, -0.5, 1e3, 1e-3]),
                         add=rng.choice([0.0, 1.0, -3.0]))
    if kind == "binary":
        op = rng.choice(BINARY)
        others = [i for i in prog.floats() if i != x and broadcastable(sh, prog.shape(i))]
        if others and rng.random() < 0.4:
            y = rng.choice(others)
        else:
            y = prog.input(draw_values(rng, broadcast_partner(rng, sh)), rng.random() < 0.7)
        if rng.random() < 0.5:
            x, y = y, x
        if op == "div" and (prog.values[y] == 0).any():
            y = prog.step("affine", [prog.step("abs", [y])], mul=1.0, add=0.5)
        if op == "pow":
            if (prog.values[x] <= 0).any():
                x = prog.step("affine", [prog.step("abs", [x])], mul=1.0, add=0.25)
            if prog.values[y].abs().max() > 3:
                y = prog.step("tanh", [y])
        return prog.step(op, [x, y])
    if kind == "view":
        op = rng.choice(["permute", "transpose", "reshape", "narrow", "unsqueeze", "expand",
                         "flatten"])
        if op == "permute" and r >= 2:
            perm = list(range(r))
            rng.shuffle(perm)
            return prog.step(op, [x], perm=perm)
        if op == "transpose" and r >= 2:
            return prog.step(op, [x], d0=rng.randrange(r), d1=rng.randrange(-r, r))
        if op == "narrow" and r >= 1:
            d = rng.randrange(r)
            start = rng.randrange(sh[d])
            return prog.step(op, [x], dim=d, start=start, len=rng.randint(1, sh[d] - start))
        if op == "expand" and r <= 3:
            target = [d if d != 1 or rng.random() < 0.3 else rng.randint(2, 3) for d in sh]
            if rng.random() < 0.4:
                target = [rng.randint(1, 3)] + target
            return prog.step(op, [x], shape=target)
        if op == "flatten" and r >= 2:
            s = rng.randrange(r - 1)
            return prog.step(op, [x], start=s, end=rng.randint(s, r - 1))
        if op == "unsqueeze" and r < 4:
            return prog.step(op, [x], dim=rng.randint(-r - 1, r))
        # reshape into a random factorization of the element count
        n, dims = math.prod(sh), []
        while n > 1 and len(dims) < 3:
            f = rng.choice([d for d in range(1, n + 1) if n % d == 0])
            dims.append(f)
            n //= f
        dims.append(n)
        rng.shuffle(dims)
        return prog.step("reshape", [x], shape=dims)
    if kind == "reduce":
        op = rng.choice(REDUCE)
        dims = sorted(rng.sample(range(r), rng.randint(0, r))) if r else []
        if rng.random() < 0.3 and dims:
            dims = [d - r if rng.random() < 0.5 else d for d in dims]
        keep = rng.random() < 0.5
        if op in ("var", "std"):
            n = math.prod(sh[d] for d in dims) if dims else math.prod(sh)
            c = rng.choice([0, 1])
            if n <= c:
                c = 0
            return prog.step(op, [x], dims=dims, keepdim=int(keep), correction=c)
        return prog.step(op, [x], dims=dims, keepdim=int(keep))
    if kind == "softmax" and r >= 1:
        return prog.step(rng.choice(["softmax", "log_softmax"]), [x], dim=rng.randrange(-r, r))
    if kind == "matmul" and r >= 1:
        k = sh[-1]
        if rng.random() < 0.3 and r <= 2:
            w = prog.input(draw_values(rng, [rng.randint(1, 4), k]))
            ids = [x, w] + ([prog.input(draw_values(rng, [prog.shape(w)[0]]))]
                            if rng.random() < 0.7 else [])
            return prog.step("linear", ids)
        if r == 1:
            b = [k] if rng.random() < 0.3 else [k, rng.randint(1, 4)]
        else:
            b = broadcast_partner(rng, sh[:-2]) + [k, rng.randint(1, 4)]
        y = prog.input(draw_values(rng, b), rng.random() < 0.8)
        if rng.random() < 0.3 and len(b) >= 2:
            # the right operand as a transposed view
            y = prog.input(draw_values(rng, b[:-2] + [b[-1], b[-2]]), True)
            y = prog.step("transpose", [y], d0=-1, d1=-2)
        return prog.step("matmul", [x, y])
    if kind == "conv":
        n, c, h, w = rng.randint(1, 2), rng.randint(1, 4), rng.randint(1, 7), rng.randint(1, 7)
        xi = prog.input(draw_values(rng, [n, c, h, w]))
        groups = rng.choice([g for g in (1, 2, 3) if c % g == 0])
        o = groups * rng.randint(1, 2)
        kh, kw = rng.randint(1, 3), rng.randint(1, 3)
        s = [rng.randint(1, 2), rng.randint(1, 2)]
        d = [rng.randint(1, 2), rng.randint(1, 2)]
        p = [rng.randint(0, 2), rng.randint(0, 2)]
        if (h + 2 * p[0] - d[0] * (kh - 1) - 1) < 0 or (w + 2 * p[1] - d[1] * (kw - 1) - 1) < 0:
            p = [d[0] * (kh - 1), d[1] * (kw - 1)]
        wi = prog.input(draw_values(rng, [o, c // groups, kh, kw]))
        ids = [xi, wi] + ([prog.input(draw_values(rng, [o]))] if rng.random() < 0.7 else [])
        return prog.step("conv2d", ids, stride=s, padding=p, dilation=d, groups=groups)
    if kind == "pool":
        if r != 4:
            x = prog.input(draw_values(rng, [rng.randint(1, 2), rng.randint(1, 3),
                                             rng.randint(2, 7), rng.randint(2, 7)]))
        h, w = prog.shape(x)[2:]
        k = [rng.randint(1, min(3, h)), rng.randint(1, min(3, w))]
        s = [rng.randint(1, 3), rng.randint(1, 3)]
        p = [rng.randint(0, k[0] // 2), rng.randint(0, k[1] // 2)]
        op = rng.choice(["max_pool2d", "avg_pool2d"])
        extra = {"count_pad": int(rng.random() < 0.5)} if op == "avg_pool2d" else {}
        return prog.step(op, [x], kernel=k, stride=s, padding=p,
                         ceil=int(rng.random() < 0.3), **extra)
    if kind == "cat" and r >= 1:
        d = rng.randrange(-r, r)
        other = list(sh)
        if rng.random() < 0.5:
            other[d] = rng.randint(1, 3)
            y = prog.input(draw_values(rng, other))
            return prog.step("cat", [x, y] if rng.random() < 0.5 else [y, x], dim=d)
        y = prog.input(draw_values(rng, other))
        return prog.step("stack", [x, y], dim=rng.randint(-r - 1, r))
    if kind == "index" and r >= 1:
        d = rng.randrange(r)
        if rng.random() < 0.5:
            idx = [rng.randrange(sh[d]) for _ in range(rng.randint(1, 5))]
            i = prog.input(torch.tensor(idx, dtype=torch.float64), grad=False)
            return prog.step("index_select", [x, i], dim=d)
        ishape = [rng.randint(1, s) for s in sh]
        ishape[d] = rng.randint(1, 4)
        idx = torch.randint(0, sh[d], ishape, generator=torch.Generator().manual_seed(
            rng.randrange(1 << 30))).to(torch.float64)
        i = prog.input(idx, grad=False)
        return prog.step("gather", [x, i], dim=d - r if rng.random() < 0.3 else d)
    if kind == "where":
        m = prog.input(torch.tensor([float(rng.random() < 0.5) for _ in range(math.prod(sh))],
                                    dtype=torch.float64).reshape(sh), grad=False)
        if rng.random() < 0.5:
            return prog.step("masked_fill", [x, m], value=rng.choice([0.0, -1e9, 2.5]))
        y = prog.input(draw_values(rng, broadcast_partner(rng, sh)))
        return prog.step("where", [m, x, y])
    return None


def draw_loss(prog):
    """A loss on the last value (reshaped as the loss needs it)."""
    rng = prog.rng
    x = prog.steps[-1][0]
    op = rng.choice(LOSSES)
    red = rng.choice(["mean", "sum", "none"])
    n = prog.values[x].numel()
    if op in ("cross_entropy", "nll_loss", "soft_cross_entropy"):
        c = rng.choice([d for d in range(2, 7) if n % d == 0] or [1])
        if c == 1 or n // c > 12:
            x = prog.input(draw_values(rng, [rng.randint(1, 4), rng.randint(2, 5)]))
            n, c = prog.values[x].numel(), prog.shape(x)[1]
        rows = n // c
        spatial = rows > 1 and rng.random() < 0.3 and rows % 2 == 0
        shape = [rows // 2, c, 2] if spatial else [rows, c]
        x = prog.step("reshape", [x], shape=shape)
        if op == "nll_loss":
            x = prog.step("log_softmax", [x], dim=1)
        per = [shape[0]] + shape[2:]
        if op == "soft_cross_entropy":
            t = torch.rand(shape, generator=torch.Generator().manual_seed(rng.randrange(1 << 30)))
            t = prog.input(t.to(torch.float64).softmax(1), grad=rng.random() < 0.3)
        else:
            ids = [float(rng.randrange(c)) if rng.random() > 0.15 else -100.0
                   for _ in range(math.prod(per))]
            if all(v == -100.0 for v in ids):
                ids[0] = 0.0
            t = prog.input(torch.tensor(ids, dtype=torch.float64).reshape(per), grad=False)
        ids = [x, t]
        if rng.random() < 0.3:
            ids.append(prog.input(torch.tensor([rng.uniform(0.2, 2) for _ in range(c)],
                                               dtype=torch.float64), grad=False))
        extra = {} if op == "nll_loss" else {"smoothing": rng.choice([0.0, 0.0, 0.1, 0.5])}
        return prog.step(op, ids, reduction=red, **extra)
    sh = prog.shape(x)
    if op == "bce_loss":
        x = prog.step("sigmoid", [x])
    t = draw_values(rng, sh)
    if op.startswith("bce"):
        t = torch.rand(sh, generator=torch.Generator().manual_seed(rng.randrange(1 << 30)))
        if rng.random() < 0.3:
            t = t.round()
    t = prog.input(t.to(torch.float64), grad=rng.random() < 0.3)
    extra = {"delta": rng.choice([1.0, 0.5, 2.0])} if op == "huber_loss" else {}
    return prog.step(op, [x, t], reduction=red, **extra)


def draw_program(rng):
    while True:
        prog = Program(rng)
        prog.input(draw_values(rng, rand_shape(rng)))
        try:
            for _ in range(rng.randint(2, 7)):
                draw_step(prog)
            if not prog.steps or rng.random() < 0.35:
                draw_loss(prog)
        except (RuntimeError, IndexError, ValueError):
            continue  # a draw PyTorch refuses (rare): draw again
        last = prog.values[prog.steps[-1][0]]
        if (last.numel() <= 4096 and all(v.numel() <= 4096 for v in prog.values.values())
                and not ignored_rows_overflow(prog) and not gelu_of_infinity(prog)):
            return prog


def gelu_of_infinity(prog):
    """Whether GELU (exact form) meets an infinite input (in float32):
    PyTorch gives NaN for both, nabla the limits x and 0. A documented
    difference; such programs are not drawn."""
    return any(op == "gelu" and (prog.values[ids[0]].float().isinf()).any()
               for _, op, ids, _ in prog.steps)


def ignored_rows_overflow(prog):
    """Whether a cross-entropy or NLL step has non-finite logits (in float32)
    in a row whose target is ignored: PyTorch's gradient for that row is
    then NaN (its log-softmax is, and is multiplied by the row's zero
    gradient), nabla's is 0. A documented difference; such programs are
    not drawn."""
    for _, op, ids, _ in prog.steps:
        if op in ("cross_entropy", "nll_loss"):
            x, t = prog.values[ids[0]], prog.values[ids[1]]
            x = x.movedim(1, -1).reshape(-1, x.shape[1]) if x.dim() > 1 else x.reshape(1, -1)
            bad = ~torch.isfinite(x.float()).all(dim=1)
            if (bad & (t.reshape(-1) == -100)).any():
                return True
    return False


def fmt(v):
    """float32 values, each in its shortest form that reads back exactly."""
    return " ".join(str(x) for x in v.reshape(-1).to(torch.float32).numpy())


def fmt_shape(s):
    return "x".join(str(d) for d in s) if len(s) else "-"


F32_MAX = float(torch.finfo(torch.float32).max)


def expected(t32, t64, *others):
    """What a float32 program must give: the float64 value where float32
    can hold it, else float32's own non-finite value (an overflow, a NaN).
    Also the positions where float32 went non-finite although float64 did
    not (PyTorch's float32 overflowed on the way, in a sum whose order
    decides between ±∞ and NaN, or where a finite value was still in
    reach: any non-finite answer or the finite one is right there), and the largest finite deviation from the expected value of
    the float32 run and of the `others` (float64 runs with rounding noise)."""
    t32 = t32.double()
    holds = torch.isfinite(t64) & (t64.abs() <= F32_MAX)
    exp = torch.where(holds, t64, t32)
    either = (torch.isfinite(t64) & ~torch.isfinite(t32)).reshape(-1).nonzero().reshape(-1)
    either = either.tolist()
    err = 0.0
    for t in (t32,) + others:
        both = torch.isfinite(t) & holds
        d = (t - t64).abs()[both]
        err = max(err, float(d.max()) if d.numel() else 0.0)
    return exp, ",".join(map(str, either)) or "-", err


def write(prog, number, out, rng):
    """Runs the program in PyTorch and writes it; or, without writing,
    returns why it is set aside."""
    last = prog.steps[-1][0]
    upstream = torch.tensor([rng.gauss(0, 1) for _ in range(prog.values[last].numel())],
                            dtype=torch.float32).reshape(prog.values[last].shape)
    try:
        v32, g32 = prog.run(torch.float32, upstream)
    except RuntimeError:
        return "PyTorch refuses its float32 run (a NaN probability)"
    v64, g64 = prog.run(torch.float64, upstream)
    # (documented differences: see documented_difference; and values in
    # float32's subnormal range, which PyTorch's vectorized exp and sigmoid
    # flush to 0 and nabla's keep, with their two or three bits, when a
    # log, root or division comes after)
    if any(subnormal(vs[i]) and amplified_after(prog, i) for vs in (v32, v64) for i in vs):
        return "a subnormal value, then a log, root or division"
    reason = documented_difference(prog, upstream)
    if reason:
        return reason
    inexact = {i: (v32[i].double() != v64[i]).double() for i in v64}
    noisy = [prog.run(torch.float64, upstream, rng.randrange(1 << 30), inexact) for _ in range(2)]
    out.write(f"P {number}\n")
    for i, (k, t) in prog.inputs.items():
        out.write(f"I {i} {k} {fmt_shape(t.shape)} {fmt(t)}\n")
    for i, op, ids, p in prog.steps:
        params = " ".join(f"{k}={v}" for k, v in p.items())
        out.write(f"S {i} {op} {','.join(map(str, ids))} {params}".rstrip() + "\n")
    for i, _, _, _ in prog.steps:
        e, either, err = expected(v32[i], v64[i], *(v[i] for v, _ in noisy))
        out.write(f"V {i} {fmt_shape(e.shape)} {err!r} {either} {fmt(e)}\n")
    out.write(f"U {fmt(upstream)}\n")
    for i in g32:
        e, either, err = expected(g32[i], g64[i], *(g[i] for _, g in noisy))
        out.write(f"G {i} {err!r} {either} {fmt(e)}\n")
    out.write("E\n")
    return None


def documented_difference(prog, upstream):
    """Which documented difference the program meets (None if none), where
    PyTorch's float32 result hangs on how it happens to round or skip
    work (in float32, going forward or back). Such programs are not
    written:

    - a conv2d, matmul or linear step meets an infinite or NaN value:
      nabla's GEMM kernels multiply the zeros of padding and of blocked
      tails that PyTorch's skip, so ±∞ there can come out NaN (and the
      other way round);
    - an infinite gradient reaches a variance or standard deviation of
      exactly 0: nabla's mean is exact there (f64), so x − x̄ is 0 and
      ∞ · 0 gives NaN; PyTorch's float32 mean is off by an ulp and gives
      ±∞;
    - ±∞ or NaN in the gradient of a step whose backward sums (a
      broadcast, a reduction): the order of the sum decides between ±∞
      and NaN, and the two frameworks sum in different orders;
    - a gradient in float32's subnormal range (as for values, below);
    - a log-softmax below 1e-10 in magnitude in a row of several (p
      within 1e-10 of 1) with a log, root or division after it: PyTorch's
      float64 takes ln of the rounded sum 1 + t and keeps few digits of t
      there (none below 1e-16), nabla's float32 takes ln_1p(t), and what
      comes after magnifies the difference.
    """
    leaves = {i: t.detach().clone().requires_grad_(k == "g") for i, (k, t) in prog.inputs.items()}
    env, watched = dict(leaves), []
    for i, op, ids, p in prog.steps:
        env[i] = apply(op, [env[j] for j in ids], p)
        products = op in ("conv2d", "matmul", "linear")
        if products and any(not torch.isfinite(env[j]).all() for j in ids):
            return "a product meets ±∞ or NaN"
        if op == "log_softmax" and env[i].shape[int(p["dim"])] > 1 and (
                prog.values[i].abs() < 1e-10).any() and amplified_after(prog, i):
            return "a log-softmax within 1e-10 of 0, then a log, root or division"
        zero_spread = op in ("var", "std") and (env[i] == 0).any()
        sums = op not in VIEWS and any(env[j].shape != env[i].shape for j in ids)
        if env[i].requires_grad:
            env[i].retain_grad()
            watched.append((env[i], products or zero_spread or sums))
    last = env[prog.steps[-1][0]]
    if last.requires_grad:
        last.backward(upstream)
    grads = [(y.grad, strict) for y, strict in watched if y.grad is not None]
    grads += [(t.grad, False) for t in leaves.values() if t.grad is not None]
    for g, strict in grads:
        if strict and not torch.isfinite(g).all():
            return "±∞ or NaN gradient into a product, a sum or a zero variance"
        if subnormal(g):
            return "a subnormal gradient"
    return None


# Ops that only move or pick values: their backward sums nothing.
VIEWS = {"permute", "transpose", "reshape", "narrow", "unsqueeze", "flatten", "cat", "stack"}

# Ops that turn a difference near 0 (a subnormal against 0, 1e-42 against
# 0) into a large one: logs, roots, reciprocals.
AMPLIFIERS = {"log", "log1p", "sqrt", "powf", "pow", "div", "bce_loss", "std", "log_softmax",
              "cross_entropy", "nll_loss"}


def amplified_after(prog, i):
    """Whether a step after step i is one of the AMPLIFIERS."""
    later = [op for j, op, _, _ in prog.steps if j > i]
    return any(op in AMPLIFIERS for op in later)


def subnormal(t):
    return bool(((t != 0) & (t.abs() < torch.finfo(torch.float32).tiny)).any())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--count", type=int, default=3000)
    ap.add_argument("--out", default=OUT)
    a = ap.parse_args()
    torch.set_num_threads(1)
    rng = random.Random(a.seed)
    tmp = a.out + ".tmp"
    # (no name and mtime 0 in the header: the same seed writes the same bytes)
    with open(tmp, "wb") as raw, gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0) as z, \
            io.TextIOWrapper(z) as out:
        set_aside = collections.Counter()
        for n in range(a.count):
            while reason := write(draw_program(rng), n, out, rng):
                set_aside[reason] += 1
    os.replace(tmp, a.out)
    print(f"{a.count} programs -> {a.out}; set aside as documented differences: "
          f"{sum(set_aside.values())} ({dict(set_aside.most_common())})")


if __name__ == "__main__":
    main()
