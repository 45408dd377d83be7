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


def save(name, inputs, fn, meta=None, consts=None):
    """Runs fn(**inputs), backprops a random upstream gradient, saves all.
    `consts` (targets, weights) are saved too but take no gradient."""
    leaves = {k: v.clone().requires_grad_(True) for k, v in inputs.items()}
    out = fn(**leaves)
    grad_out = rand(*out.shape)
    out.backward(grad_out)
    tensors = {k: v.detach().contiguous() for k, v in inputs.items()}
    tensors.update({k: v.contiguous() for k, v in (consts or {}).items()})
    tensors["out"] = out.detach().contiguous()
    tensors["grad_out"] = grad_out.contiguous()
    for k, v in leaves.items():
        tensors["grad_" + k] = v.grad.contiguous()
    meta = {k: str(v) for k, v in (meta or {}).items()}
    meta["torch"] = torch.__version__
    save_file(tensors, os.path.join(OUT, name + ".safetensors"), metadata=meta)


def main():
    """Op fixtures. Each group below seeds its own generator, so adding a
    group never changes the others' values."""
    torch.manual_seed(0)
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


def optimizers():
    """Parameters after 5 steps of each optimizer configuration on a fixed
    problem: the gradient at each step is a*p + b (elementwise, fixed a, b)."""
    torch.manual_seed(2)
    configs = [
        ("sgd", "SGD", dict(lr=0.1)),
        ("sgd_momentum", "SGD", dict(lr=0.1, momentum=0.9)),
        ("sgd_dampening", "SGD", dict(lr=0.1, momentum=0.9, dampening=0.5)),
        ("sgd_nesterov", "SGD", dict(lr=0.1, momentum=0.9, nesterov=True)),
        ("sgd_weight_decay", "SGD", dict(lr=0.1, momentum=0.9, weight_decay=0.01)),
        ("sgd_maximize", "SGD", dict(lr=0.1, maximize=True)),
        ("adam", "Adam", dict(lr=0.01)),
        ("adam_weight_decay", "Adam", dict(lr=0.01, weight_decay=0.1)),
        ("adam_amsgrad", "Adam", dict(lr=0.01, amsgrad=True)),
        ("adam_betas_eps", "Adam", dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6)),
        ("adam_maximize", "Adam", dict(lr=0.01, maximize=True)),
        ("adamw", "AdamW", dict(lr=0.01)),
        ("adamw_amsgrad", "AdamW", dict(lr=0.01, weight_decay=0.1, amsgrad=True)),
        ("rmsprop", "RMSprop", dict(lr=0.01)),
        ("rmsprop_centered", "RMSprop", dict(lr=0.01, centered=True)),
        ("rmsprop_momentum", "RMSprop", dict(lr=0.01, momentum=0.9, weight_decay=0.01)),
        ("rmsprop_centered_momentum", "RMSprop", dict(lr=0.01, centered=True, momentum=0.5, alpha=0.9)),
        ("adagrad", "Adagrad", dict(lr=0.1)),
        ("adagrad_decay", "Adagrad", dict(lr=0.1, lr_decay=0.01, weight_decay=0.1, initial_accumulator_value=0.1)),
    ]
    for name, kind, kw in configs:
        p0, a, b = rand(3, 4), rand(3, 4), rand(3, 4)
        p = p0.clone().requires_grad_(True)
        opt = getattr(torch.optim, kind)([p], **kw)
        for _ in range(5):
            with torch.no_grad():
                p.grad = a * p + b
            opt.step()
        meta = {"kind": kind}
        for k, v in kw.items():
            meta[k] = ",".join(map(str, v)) if isinstance(v, tuple) else str(int(v) if isinstance(v, bool) else v)
        save_file({"p0": p0, "a": a, "b": b, "p5": p.detach().clone()},
                  os.path.join(OUT, f"optim_{name}.safetensors"), metadata=meta)


def losses():
    torch.manual_seed(3)
    x, t = rand(4, 5), rand(4, 5)
    save("loss_mse", {"x": x}, lambda x: F.mse_loss(x, t), consts={"target": t})
    save("loss_l1_sum", {"x": x}, lambda x: F.l1_loss(x, t, reduction="sum"), consts={"target": t})
    save("loss_huber", {"x": x}, lambda x: F.huber_loss(x, t, delta=0.5), consts={"target": t})
    probs = torch.rand(4, 5) * 0.98 + 0.01
    y = (torch.rand(4, 5) > 0.5).float()
    save("loss_bce", {"x": probs}, lambda x: F.binary_cross_entropy(x, y), consts={"target": y})
    save("loss_bce_logits", {"x": x * 3}, lambda x: F.binary_cross_entropy_with_logits(x, y), consts={"target": y})
    logits = rand(6, 5) * 2
    labels = torch.tensor([0, 4, 2, 2, 1, 3])
    w = torch.rand(5) + 0.5
    lf = labels.float()
    save("loss_ce", {"x": logits}, lambda x: F.cross_entropy(x, labels), consts={"target": lf})
    save("loss_ce_weight_smoothing", {"x": logits},
         lambda x: F.cross_entropy(x, labels, weight=w, label_smoothing=0.1), consts={"target": lf, "weight": w})
    save("loss_ce_none", {"x": logits}, lambda x: F.cross_entropy(x, labels, reduction="none"), consts={"target": lf})
    save("loss_nll_weight", {"x": logits}, lambda x: F.nll_loss(F.log_softmax(x, 1), labels, weight=w),
         consts={"target": lf, "weight": w})
    # targets of -100 (ignore_index's default) count for nothing
    ig = torch.tensor([0, -100, 2, -100, 1, 3])
    igf = ig.float()
    save("loss_ce_ignore_smoothing", {"x": logits},
         lambda x: F.cross_entropy(x, ig, weight=w, label_smoothing=0.1), consts={"target": igf, "weight": w})
    save("loss_nll_ignore", {"x": logits}, lambda x: F.nll_loss(F.log_softmax(x, 1), ig, weight=w),
         consts={"target": igf, "weight": w})
    # a class per position: logits [N, C, L], targets [N, L]
    seq = rand(2, 5, 3) * 2
    seq_labels = torch.tensor([[1, 4, -100], [0, 2, 2]])
    save("loss_ce_positions", {"x": seq},
         lambda x: F.cross_entropy(x, seq_labels, label_smoothing=0.1), consts={"target": seq_labels.float()})
    save("loss_ce_positions_none", {"x": seq},
         lambda x: F.cross_entropy(x, seq_labels, reduction="none"), consts={"target": seq_labels.float()})
    save("loss_nll_positions", {"x": seq},
         lambda x: F.nll_loss(F.log_softmax(x, 1), seq_labels, reduction="sum"), consts={"target": seq_labels.float()})
    # class probabilities as targets (soft labels)
    probs = F.softmax(rand(6, 5), 1)
    save("loss_ce_probs", {"x": logits},
         lambda x: F.cross_entropy(x, probs, weight=w, label_smoothing=0.1), consts={"target": probs, "weight": w})
    seq_probs = F.softmax(rand(2, 5, 3), 1)
    save("loss_ce_probs_positions_none", {"x": seq},
         lambda x: F.cross_entropy(x, seq_probs, reduction="none"), consts={"target": seq_probs})


def read_idx(path):
    import gzip
    import struct
    b = gzip.open(path).read()
    nd = b[3]
    dims = struct.unpack(">" + "I" * nd, b[4:4 + 4 * nd])
    return torch.frombuffer(bytearray(b[4 + 4 * nd:]), dtype=torch.uint8).reshape(dims)


class LeNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(1, 6, 5, padding=2)
        self.conv2 = torch.nn.Conv2d(6, 16, 5)
        self.fc1 = torch.nn.Linear(400, 120)
        self.fc2 = torch.nn.Linear(120, 84)
        self.fc3 = torch.nn.Linear(84, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = x.view(-1, 400)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


def lenet():
    """A LeNet state_dict, its logits on 100 shipped test images, and its
    weights after one SGD step (lr 0.001, momentum 0.9) on 64 training images."""
    data = os.path.join(os.path.dirname(__file__), "..", "data", "mnist")
    norm = lambda u8: ((u8.float() / 255 - 0.1307) / 0.3081).unsqueeze(1)
    test_x = norm(read_idx(os.path.join(data, "t10k-images-idx3-ubyte.gz"))[::20][:100])
    train_x = norm(read_idx(os.path.join(data, "train-images-idx3-ubyte.gz"))[::125][:64])
    train_y = read_idx(os.path.join(data, "train-labels-idx1-ubyte.gz"))[::125][:64].long()
    torch.manual_seed(7)
    model = LeNet()
    sd = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(sd, os.path.join(OUT, "lenet_state_dict.safetensors"))
    with torch.no_grad():
        logits = model(test_x)
    opt = torch.optim.SGD(model.parameters(), lr=0.001, momentum=0.9)
    opt.zero_grad()
    loss = F.cross_entropy(model(train_x), train_y)
    loss.backward()
    opt.step()
    after = {"after." + k: v.detach().contiguous() for k, v in model.state_dict().items()}
    # `nabla train --init-weights lenet_state_dict.safetensors --max-steps 1
    # --no-shuffle`: one step on the first 64 training images in file order.
    torch.manual_seed(7)
    model2 = LeNet()
    first_x = norm(read_idx(os.path.join(data, "train-images-idx3-ubyte.gz"))[:64])
    first_y = read_idx(os.path.join(data, "train-labels-idx1-ubyte.gz"))[:64].long()
    opt2 = torch.optim.SGD(model2.parameters(), lr=0.001, momentum=0.9)
    opt2.zero_grad()
    F.cross_entropy(model2(first_x), first_y).backward()
    opt2.step()
    save_file({k: v.detach().contiguous() for k, v in model2.state_dict().items()},
              os.path.join(OUT, "lenet_cli_one_step.safetensors"))
    save_file({"test_x": test_x.contiguous(), "logits": logits, "train_x": train_x.contiguous(),
               "train_y": train_y.float(), "loss": loss.detach().reshape(1), **after},
              os.path.join(OUT, "lenet_step.safetensors"))


def schedulers():
    """The learning rate over 30 steps of each schedule (base lr 0.1)."""
    S = torch.optim.lr_scheduler
    configs = {
        "step": lambda o: S.StepLR(o, step_size=7, gamma=0.5),
        "multistep": lambda o: S.MultiStepLR(o, milestones=[3, 10, 20], gamma=0.3),
        "exponential": lambda o: S.ExponentialLR(o, gamma=0.9),
        "cosine": lambda o: S.CosineAnnealingLR(o, T_max=30, eta_min=0.001),
        "linear": lambda o: S.LinearLR(o, start_factor=0.1, end_factor=1.0, total_iters=8),
        "onecycle": lambda o: S.OneCycleLR(o, max_lr=1.0, total_steps=31, cycle_momentum=False),
    }
    out = {}
    for name, make in configs.items():
        opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
        sched = make(opt)
        lrs = []
        for _ in range(30):
            lrs.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
        out[name] = torch.tensor(lrs, dtype=torch.float64).float()
    # OneCycleLR's default cycle_momentum: SGD's momentum and Adam's beta1
    for name, opt, key in [
        ("sgd", torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1, momentum=0.9), "momentum"),
        ("adam", torch.optim.Adam([torch.zeros(1, requires_grad=True)], lr=0.1), "betas"),
    ]:
        sched = S.OneCycleLR(opt, max_lr=1.0, total_steps=31)
        lrs, moms = [], []
        for _ in range(30):
            group = opt.param_groups[0]
            lrs.append(group["lr"])
            moms.append(group[key][0] if key == "betas" else group[key])
            opt.step()
            sched.step()
        out[f"onecycle_{name}_lr"] = torch.tensor(lrs, dtype=torch.float64).float()
        out[f"onecycle_{name}_momentum"] = torch.tensor(moms, dtype=torch.float64).float()
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    plateau = S.ReduceLROnPlateau(opt, factor=0.5, patience=2, cooldown=1)
    metrics = torch.tensor([1.0, 0.9, 0.95, 0.95, 0.95, 0.8, 0.85, 0.85, 0.85, 0.85, 0.85, 0.85])
    lrs = []
    for m in metrics:
        plateau.step(m.item())
        lrs.append(opt.param_groups[0]["lr"])
    out["plateau_metrics"] = metrics
    out["plateau"] = torch.tensor(lrs).float()
    save_file(out, os.path.join(OUT, "schedulers.safetensors"))


def norms():
    """BatchNorm2d in training mode (output, gradients, running statistics),
    the same layer in eval mode afterwards, and LayerNorm."""
    torch.manual_seed(1)
    x, w, b = rand(4, 3, 5, 5), rand(3), rand(3)
    bn = torch.nn.BatchNorm2d(3)
    with torch.no_grad():
        bn.weight.copy_(w)
        bn.bias.copy_(b)
    xl = x.clone().requires_grad_(True)
    y = bn(xl)
    g = rand(*y.shape)
    y.backward(g)
    bn.eval()
    with torch.no_grad():
        y_eval = bn(x * 2)
    save_file({"x": x, "weight": w, "bias": b, "out": y.detach(), "grad_out": g, "grad_x": xl.grad,
               "grad_weight": bn.weight.grad, "grad_bias": bn.bias.grad, "running_mean": bn.running_mean,
               "running_var": bn.running_var, "out_eval": y_eval},
              os.path.join(OUT, "batchnorm2d.safetensors"))
    save("layernorm", {"x": rand(3, 4, 6), "w": rand(4, 6), "b": rand(4, 6)},
         lambda x, w, b: F.layer_norm(x, (4, 6), w, b))


def recurrent():
    """RNN, LSTM and GRU: 2 layers, bidirectional, batch_first, given initial
    states; outputs and the gradients of the input and of every parameter."""
    torch.manual_seed(5)
    for name, cls in (("rnn", torch.nn.RNN), ("lstm", torch.nn.LSTM), ("gru", torch.nn.GRU)):
        m = cls(3, 4, num_layers=2, bidirectional=True, batch_first=True)
        x = rand(2, 5, 3).requires_grad_(True)
        h0 = rand(4, 2, 4)
        c0 = rand(4, 2, 4)
        out, state = m(x, (h0, c0)) if name == "lstm" else m(x, h0)
        h_n = state[0] if name == "lstm" else state
        g_out, g_h = rand(*out.shape), rand(*h_n.shape)
        loss = (out * g_out).sum() + (h_n * g_h).sum()
        tensors = {"x": x.detach(), "h0": h0, "out": out.detach(), "h_n": h_n.detach(), "grad_out": g_out, "grad_h_n": g_h}
        if name == "lstm":
            tensors["c0"] = c0
            tensors["c_n"] = state[1].detach()
        loss.backward()
        tensors["grad_x"] = x.grad
        for k, v in m.named_parameters():
            tensors[k] = v.detach().contiguous()
            tensors["grad_" + k] = v.grad.contiguous()
        save_file({k: v.contiguous() for k, v in tensors.items()}, os.path.join(OUT, f"{name}_2layer_bidir.safetensors"))


def conv_same():
    """padding='same': even and odd totals of padding, with dilation."""
    torch.manual_seed(7)
    for name, ws, d in [("conv2d_same_k4", (4, 3, 4, 4), 1), ("conv2d_same_k2x3", (4, 3, 2, 3), 1),
                        ("conv2d_same_k2_d3", (4, 3, 2, 2), 3), ("conv2d_same_k3_d2", (4, 3, 3, 3), 2)]:
        save(name, {"x": rand(2, 3, 7, 6), "w": rand(*ws), "b": rand(ws[0])},
             lambda x, w, b, d=d: F.conv2d(x, w, b, padding="same", dilation=d), {"dilation": d})


def pool_ceil():
    """ceil_mode: partial last windows (max: cut at the input; avg: divided
    by the window cut at the padded input, or by its pixels)."""
    torch.manual_seed(8)
    cases = [
        ("max_pool2d_k2_ceil", (2, 3, 7, 7), dict(kind="max", kernel=2, stride=2, padding=0, count_include_pad=1)),
        ("max_pool2d_k3s2p1_ceil", (2, 3, 8, 9), dict(kind="max", kernel=3, stride=2, padding=1, count_include_pad=1)),
        ("avg_pool2d_k2_ceil", (2, 3, 7, 7), dict(kind="avg", kernel=2, stride=2, padding=0, count_include_pad=1)),
        ("avg_pool2d_k3s2p1_ceil", (2, 3, 8, 9), dict(kind="avg", kernel=3, stride=2, padding=1, count_include_pad=1)),
        ("avg_pool2d_k3s2p1_ceil_nopad", (2, 3, 8, 9), dict(kind="avg", kernel=3, stride=2, padding=1, count_include_pad=0)),
    ]
    for name, xs, p in cases:
        def f(x, p=p):
            if p["kind"] == "max":
                return F.max_pool2d(x, p["kernel"], p["stride"], p["padding"], ceil_mode=True)
            return F.avg_pool2d(x, p["kernel"], p["stride"], p["padding"], ceil_mode=True,
                                count_include_pad=bool(p["count_include_pad"]))
        save(name, {"x": rand(*xs)}, f, p)


def activations():
    """The smooth rectifiers added after the first unary group."""
    torch.manual_seed(9)
    unary = {
        "silu": F.silu,
        "mish": F.mish,
        "elu": lambda x: F.elu(x, alpha=0.7),
        "selu": F.selu,
        "softplus": F.softplus,
        "softplus_b15_t2": lambda x: F.softplus(x, beta=1.5, threshold=2.0),
    }
    for name, fn in unary.items():
        save("unary_" + name, {"x": rand(4, 5) * 3}, lambda x, fn=fn: fn(x))


def random_configs():
    """Convolutions and poolings with drawn settings (stride, padding,
    dilation, groups, rectangular kernels, ceil_mode, count_include_pad):
    cases no one picked by hand. Files rand_conv_K / rand_pool_K."""
    g = torch.Generator().manual_seed(10)

    def draw(lo, hi):
        return int(torch.randint(lo, hi + 1, (1,), generator=g))

    torch.manual_seed(10)
    k = 0
    while k < 16:
        groups = draw(1, 3)
        c, o = groups * draw(1, 2), groups * draw(1, 3)
        kh, kw = draw(1, 4), draw(1, 4)
        sh, sw = draw(1, 3), draw(1, 3)
        dh, dw = draw(1, 2), draw(1, 2)
        ph, pw = draw(0, 2), draw(0, 2)
        h, w = draw(1, 9), draw(1, 9)
        if h + 2 * ph < dh * (kh - 1) + 1 or w + 2 * pw < dw * (kw - 1) + 1:
            continue
        p = dict(stride=(sh, sw), padding=(ph, pw), dilation=(dh, dw), groups=groups)
        meta = dict(sh=sh, sw=sw, ph=ph, pw=pw, dh=dh, dw=dw, groups=groups)
        save(f"rand_conv_{k}", {"x": rand(2, c, h, w), "w": rand(o, c // groups, kh, kw), "b": rand(o)},
             lambda x, w, b, p=p: F.conv2d(x, w, b, **p), meta)
        k += 1
    k = 0
    while k < 16:
        kh, kw = draw(1, 4), draw(1, 4)
        sh, sw = draw(1, 3), draw(1, 3)
        ph, pw = draw(0, kh // 2), draw(0, kw // 2)
        h, w = draw(1, 9), draw(1, 9)
        ceil, count_pad, kind = draw(0, 1), draw(0, 1), ("max", "avg")[draw(0, 1)]
        if h + 2 * ph < kh or w + 2 * pw < kw:
            continue
        meta = dict(kind=kind, kh=kh, kw=kw, sh=sh, sw=sw, ph=ph, pw=pw, ceil=ceil, count_pad=count_pad)

        def f(x, kind=kind, k=(kh, kw), s=(sh, sw), p=(ph, pw), ceil=ceil, count_pad=count_pad):
            if kind == "max":
                return F.max_pool2d(x, k, s, p, ceil_mode=bool(ceil))
            return F.avg_pool2d(x, k, s, p, ceil_mode=bool(ceil), count_include_pad=bool(count_pad))
        save(f"rand_pool_{k}", {"x": rand(2, 3, h, w)}, f, meta)
        k += 1


def recurrent_configs():
    """More recurrent stacks: relu RNNs, no biases, one and three layers,
    either batch order, variable lengths (packed sequences), one step, a
    batch of one. Files rnn_cfg_K; the loss adds c_n's term for an LSTM."""
    torch.manual_seed(11)
    configs = [
        # kind, layers, bidirectional, batch_first, bias, input, hidden, T, N, lengths
        ("rnn_relu", 3, False, False, True, 2, 3, 4, 3, [4, 2, 3]),
        ("lstm", 1, True, False, False, 3, 5, 3, 2, None),
        ("gru", 3, True, True, False, 4, 2, 5, 3, [5, 1, 3]),
        ("lstm", 2, False, True, True, 1, 6, 6, 1, None),
        ("gru", 1, False, False, True, 5, 4, 2, 4, [2, 1, 2, 1]),
        ("rnn_tanh", 2, True, True, False, 3, 3, 3, 2, [3, 2]),
        ("lstm", 2, True, False, True, 2, 3, 1, 3, None),
    ]
    for k, (kind, layers, bidir, bf, bias, i, h, t, n, lengths) in enumerate(configs):
        d = 2 if bidir else 1
        common = dict(num_layers=layers, bidirectional=bidir, batch_first=bf, bias=bias)
        if kind.startswith("rnn"):
            m = torch.nn.RNN(i, h, nonlinearity=kind[4:], **common)
        else:
            m = (torch.nn.LSTM if kind == "lstm" else torch.nn.GRU)(i, h, **common)
        x = rand(*((n, t, i) if bf else (t, n, i))).requires_grad_(True)
        h0, c0 = rand(layers * d, n, h), rand(layers * d, n, h)
        state0 = (h0, c0) if kind == "lstm" else h0
        if lengths is None:
            out, state = m(x, state0)
        else:
            packed = torch.nn.utils.rnn.pack_padded_sequence(x, torch.tensor(lengths), batch_first=bf, enforce_sorted=False)
            out, state = m(packed, state0)
            out, _ = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=bf, total_length=t)
        h_n = state[0] if kind == "lstm" else state
        g_out, g_h = rand(*out.shape), rand(*h_n.shape)
        loss = (out * g_out).sum() + (h_n * g_h).sum()
        tensors = {"x": x.detach(), "h0": h0, "out": out.detach(), "h_n": h_n.detach(), "grad_out": g_out, "grad_h_n": g_h}
        if kind == "lstm":
            g_c = rand(*state[1].shape)
            loss = loss + (state[1] * g_c).sum()
            tensors.update({"c0": c0, "c_n": state[1].detach(), "grad_c_n": g_c})
        loss.backward()
        tensors["grad_x"] = x.grad
        for name, v in m.named_parameters():
            tensors[name] = v.detach().contiguous()
            tensors["grad_" + name] = v.grad.contiguous()
        meta = dict(kind=kind, layers=layers, bidirectional=int(bidir), batch_first=int(bf), bias=int(bias),
                    input=i, hidden=h, lengths=",".join(map(str, lengths or [])), torch=torch.__version__)
        save_file({key: v.contiguous() for key, v in tensors.items()}, os.path.join(OUT, f"rnn_cfg_{k}.safetensors"),
                  metadata={key: str(v) for key, v in meta.items()})


def cells():
    """nn.LSTMCell, nn.GRUCell without biases, nn.RNNCell with relu: one
    step from given states; the gradients of the input, the states and
    every parameter. Files cell_lstm, cell_gru, cell_rnn_relu."""
    torch.manual_seed(12)
    for name, m in (("lstm", torch.nn.LSTMCell(3, 4)), ("gru", torch.nn.GRUCell(3, 4, bias=False)),
                    ("rnn_relu", torch.nn.RNNCell(3, 4, nonlinearity="relu"))):
        x, h0, c0 = (rand(2, 3).requires_grad_(True), rand(2, 4).requires_grad_(True),
                     rand(2, 4).requires_grad_(True))
        out = m(x, (h0, c0)) if name == "lstm" else m(x, h0)
        h = out[0] if name == "lstm" else out
        g_h = rand(*h.shape)
        loss = (h * g_h).sum()
        tensors = {"x": x.detach(), "h0": h0.detach(), "h": h.detach(), "grad_h": g_h}
        if name == "lstm":
            g_c = rand(*out[1].shape)
            loss = loss + (out[1] * g_c).sum()
            tensors.update({"c0": c0.detach(), "c": out[1].detach(), "grad_c": g_c, "grad_c0": None})
        loss.backward()
        tensors.update({"grad_x": x.grad, "grad_h0": h0.grad})
        if name == "lstm":
            tensors["grad_c0"] = c0.grad
        for k, v in m.named_parameters():
            tensors[k] = v.detach().contiguous()
            tensors["grad_" + k] = v.grad.contiguous()
        save_file({k: v.contiguous() for k, v in tensors.items()}, os.path.join(OUT, f"cell_{name}.safetensors"),
                  metadata={"torch": torch.__version__})


def examples_pieces():
    """What PyTorch's examples need beyond the rest (issue 27): Adadelta,
    transposed convolutions, topk."""
    torch.manual_seed(27)
    for name, kw in [("adadelta", dict(lr=1.0)),
                     ("adadelta_rho_wd", dict(lr=0.5, rho=0.8, eps=1e-5, weight_decay=0.1)),
                     ("adadelta_maximize", dict(lr=1.0, maximize=True))]:
        p0, a, b = rand(3, 4), rand(3, 4), rand(3, 4)
        p = p0.clone().requires_grad_(True)
        opt = torch.optim.Adadelta([p], **kw)
        for _ in range(5):
            with torch.no_grad():
                p.grad = a * p + b
            opt.step()
        meta = {"kind": "Adadelta"}
        meta.update({k: str(int(v) if isinstance(v, bool) else v) for k, v in kw.items()})
        save_file({"p0": p0, "a": a, "b": b, "p5": p.detach().clone()},
                  os.path.join(OUT, f"optim_{name}.safetensors"), metadata=meta)
    convs = [
        ("conv_transpose2d", (2, 3, 4, 5), (3, 2, 3, 3), dict(stride=1, padding=0, output_padding=0, dilation=1, groups=1)),
        ("conv_transpose2d_dcgan", (2, 8, 7, 7), (8, 4, 4, 4), dict(stride=2, padding=1, output_padding=0, dilation=1, groups=1)),
        ("conv_transpose2d_outpad", (1, 2, 3, 4), (2, 3, 3, 2), dict(stride=2, padding=1, output_padding=1, dilation=1, groups=1)),
        ("conv_transpose2d_g2d2", (2, 4, 3, 3), (4, 1, 3, 3), dict(stride=1, padding=1, output_padding=0, dilation=2, groups=2)),
    ]
    for name, xs, ws, p in convs:
        out = ws[1] * p["groups"]
        save(name, {"x": rand(*xs), "w": rand(*ws), "b": rand(out)},
             lambda x, w, b, p=p: F.conv_transpose2d(x, w, b, **p), p)
    x = rand(4, 9)
    save("topk_largest", {"x": x}, lambda x: torch.topk(x, 3, dim=1).values)
    save("topk_smallest_dim0", {"x": x}, lambda x: torch.topk(x, 2, dim=0, largest=False).values)
    # L-BFGS on 0.5·Σ(a⊙p + b)² + 0.1·Σp⁴, three steps of five iterations
    for name, ls in [("lbfgs", None), ("lbfgs_strong_wolfe", "strong_wolfe")]:
        p0, a, b = rand(3, 4), rand(3, 4), rand(3, 4)
        p = p0.clone().requires_grad_(True)
        opt = torch.optim.LBFGS([p], lr=0.5 if ls is None else 1.0, max_iter=5, history_size=4, line_search_fn=ls)

        def closure():
            opt.zero_grad()
            loss = 0.5 * ((a * p + b) ** 2).sum() + 0.1 * (p ** 4).sum()
            loss.backward()
            return loss
        losses = torch.tensor([float(opt.step(closure).detach()) for _ in range(3)])
        save_file({"p0": p0, "a": a, "b": b, "p3": p.detach().clone(), "losses": losses,
                   "func_evals": torch.tensor([float(opt.state[p]["func_evals"])])},
                  os.path.join(OUT, f"{name}.safetensors"),
                  metadata={"lr": str(0.5 if ls is None else 1.0), "line_search": str(ls)})


def attention():
    """scaled_dot_product_attention (issue 20): masks of both kinds (a row
    that sees nothing included), causal with L != S, grouped-query heads,
    a scale, and blocks of rows and keys crossed."""
    torch.manual_seed(20)

    def sdpa(name, q, k, v, mask=None, **kw):
        consts = {}
        m = mask
        if mask is not None:
            consts["mask"] = mask.float()
        save(name, {"q": rand(*q), "k": rand(*k), "v": rand(*v)},
             lambda q, k, v: F.scaled_dot_product_attention(q, k, v, attn_mask=m, **kw),
             {key: (int(val) if isinstance(val, bool) else val) for key, val in kw.items()}, consts)

    sdpa("sdpa_plain", (2, 3, 5, 8), (2, 3, 7, 8), (2, 3, 7, 6))
    sdpa("sdpa_causal", (2, 3, 6, 8), (2, 3, 9, 8), (2, 3, 9, 8), is_causal=True)
    keep = torch.rand(5, 7) > 0.3
    keep[2] = False
    sdpa("sdpa_bool_mask", (2, 3, 5, 8), (2, 3, 7, 8), (2, 3, 7, 4), mask=keep)
    add = torch.randn(3, 1, 7)
    add[1, 0, 2] = float("-inf")
    sdpa("sdpa_float_mask", (2, 3, 5, 8), (2, 3, 7, 8), (2, 3, 7, 4), mask=add)
    sdpa("sdpa_gqa", (2, 4, 5, 8), (2, 2, 7, 8), (2, 2, 7, 8), enable_gqa=True)
    sdpa("sdpa_scale_3d", (3, 5, 8), (3, 7, 8), (3, 7, 8), scale=0.3)
    sdpa("sdpa_long_causal", (1, 2, 150, 16), (1, 2, 150, 16), (1, 2, 150, 16), is_causal=True)


def multihead_attention():
    """nn.MultiheadAttention (issue 20): self- and cross-attention, key
    padding and attention masks of both kinds (saved as floats, their kind
    in the metadata), per-head and averaged weights, kdim/vdim, batch_first,
    an unbatched input. Saves the parameters under their PyTorch names
    (`param.` + name), the output, the weights, and the gradients of the
    inputs and parameters for `Σ out·g (+ Σ weights·gw)`."""
    torch.manual_seed(21)

    def mha(name, E, H, L, S, N, kdim=None, vdim=None, batch_first=False, kpm=None,
            attn=None, need_weights=False, average=True, unbatched=False, self_attn=False):
        m = torch.nn.MultiheadAttention(E, H, kdim=kdim, vdim=vdim, batch_first=batch_first)
        with torch.no_grad():
            for p in m.parameters():
                p.copy_(torch.randn_like(p) * 0.3)
        def shaped(T, F):
            if unbatched:
                return rand(T, F)
            return rand(N, T, F) if batch_first else rand(T, N, F)
        q = shaped(L, E).requires_grad_(True)
        if self_attn:
            k = v = q
        else:
            k = shaped(S, kdim or E).requires_grad_(True)
            v = shaped(S, vdim or E).requires_grad_(True)
        out, w = m(q, k, v, key_padding_mask=kpm, attn_mask=attn,
                   need_weights=need_weights, average_attn_weights=average)
        g = rand(*out.shape)
        loss = (out * g).sum()
        tensors = {"q": q.detach().clone(), "out": out.detach().contiguous(), "grad_out": g}
        if w is not None:
            gw = rand(*w.shape)
            loss = loss + (w * gw).sum()
            tensors.update({"weights": w.detach().contiguous(), "grad_weights": gw})
        loss.backward()
        tensors["grad_q"] = q.grad.clone()
        if not self_attn:
            tensors.update({"k": k.detach().clone(), "v": v.detach().clone(),
                            "grad_k": k.grad.clone(), "grad_v": v.grad.clone()})
        for pname, p in m.named_parameters():
            tensors["param." + pname] = p.detach().clone()
            tensors["grad_param." + pname] = p.grad.clone()
        meta = dict(E=E, H=H, batch_first=int(batch_first), need_weights=int(need_weights),
                    average=int(average), self_attn=int(self_attn))
        for key, mask in (("kpm", kpm), ("attn", attn)):
            if mask is not None:
                tensors[key] = mask.float().contiguous()
                meta[key] = "bool" if mask.dtype == torch.bool else "float"
        if kdim:
            meta["kdim"], meta["vdim"] = kdim, vdim
        save_file({k: t.contiguous() for k, t in tensors.items()}, os.path.join(OUT, name + ".safetensors"),
                  metadata={k: str(v) for k, v in meta.items()})

    mha("mha_self_weights", 8, 2, 5, 5, 3, need_weights=True, self_attn=True)
    kpm = torch.zeros(3, 6, dtype=torch.bool)
    kpm[0, 4:] = True
    kpm[2, 1] = True
    mha("mha_cross_kpm_bool", 8, 2, 5, 6, 3, kpm=kpm)
    mha("mha_attn_float_per_head", 8, 4, 5, 6, 2, batch_first=True,
        attn=torch.randn(8, 5, 6), need_weights=True, average=False)
    attn = torch.rand(5, 6) > 0.7
    attn[:, 0] = False
    mha("mha_kdim_vdim_attn_bool", 8, 2, 5, 6, 3, kdim=5, vdim=3, attn=attn)
    mha("mha_unbatched_kpm_float", 6, 3, 4, 7, 1, unbatched=True, kpm=torch.randn(7))


def transformers():
    """The Transformer modules (issue 20), dropout 0 in training mode:
    encoder and decoder layers in both norm orders with ReLU and GELU, a
    whole nn.Transformer with a causal target mask and source key padding.
    Parameters saved under their PyTorch names (`param.` + name), with the
    inputs, masks (floats; their kind in the metadata), the output and the
    gradients of the inputs and parameters for `Σ out·g`."""
    torch.manual_seed(22)
    nn = torch.nn

    def run(name, m, inputs, call, meta, masks=None):
        with torch.no_grad():
            for p in m.parameters():
                p.add_(torch.randn_like(p) * 0.1)
        leaves = {k: v.clone().requires_grad_(True) for k, v in inputs.items()}
        out = call(m, **leaves)
        g = rand(*out.shape)
        (out * g).sum().backward()
        tensors = {k: v for k, v in inputs.items()}
        tensors.update({"out": out.detach(), "grad_out": g})
        tensors.update({"grad_" + k: v.grad for k, v in leaves.items()})
        for k, (mask, kind) in (masks or {}).items():
            tensors[k] = mask.float()
            meta[k] = kind
        for pname, p in m.named_parameters():
            tensors["param." + pname] = p.detach()
            tensors["grad_param." + pname] = p.grad
        save_file({k: t.contiguous() for k, t in tensors.items()}, os.path.join(OUT, name + ".safetensors"),
                  metadata={k: str(v) for k, v in meta.items()})

    d, h, ff = 8, 2, 16
    for norm_first in (False, True):
        for act in ("relu", "gelu"):
            layer = nn.TransformerEncoderLayer(d, h, ff, dropout=0.0, activation=act, norm_first=norm_first)
            kpm = torch.zeros(3, 5, dtype=torch.bool)
            kpm[1, 3:] = True
            run(f"encoder_layer_{'pre' if norm_first else 'post'}_{act}", layer, {"src": rand(5, 3, d)},
                lambda m, src: m(src, src_key_padding_mask=kpm),
                dict(d=d, h=h, ff=ff, norm_first=int(norm_first), act=act), {"src_kpm": (kpm, "bool")})
        layer = nn.TransformerDecoderLayer(d, h, ff, dropout=0.0, norm_first=norm_first, batch_first=True)
        causal = nn.Transformer.generate_square_subsequent_mask(4)
        run(f"decoder_layer_{'pre' if norm_first else 'post'}", layer, {"tgt": rand(2, 4, d), "memory": rand(2, 6, d)},
            lambda m, tgt, memory: m(tgt, memory, tgt_mask=causal),
            dict(d=d, h=h, ff=ff, norm_first=int(norm_first), act="relu", batch_first=1), {"tgt_mask": (causal, "float")})
    t = nn.Transformer(d, h, 2, 2, ff, dropout=0.0)
    kpm = torch.zeros(3, 5, dtype=torch.bool)
    kpm[0, 4] = True
    causal = nn.Transformer.generate_square_subsequent_mask(4)
    run("transformer_small", t, {"src": rand(5, 3, d), "tgt": rand(4, 3, d)},
        lambda m, src, tgt: m(src, tgt, tgt_mask=causal, src_key_padding_mask=kpm, memory_key_padding_mask=kpm),
        dict(d=d, h=h, ff=ff, norm_first=0, act="relu", enc=2, dec=2),
        {"tgt_mask": (causal, "float"), "src_kpm": (kpm, "bool")})


def gpt():
    """A GPT with nanoGPT's architecture and names (issue 20), written here
    from its description: learned positions, pre-norm blocks of causal
    self-attention (fused c_attn) and a 4x GELU MLP, ln_f, lm_head tied to
    wte. Saves the parameters (`param.` + name, lm_head included), ids,
    targets, the logits and the gradients of the cross-entropy loss."""
    torch.manual_seed(23)
    nn = torch.nn
    V, T, L, H, C = 11, 8, 2, 2, 16

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln_1, self.ln_2 = nn.LayerNorm(C), nn.LayerNorm(C)
            self.attn = nn.Module()
            self.attn.c_attn, self.attn.c_proj = nn.Linear(C, 3 * C), nn.Linear(C, C)
            self.mlp = nn.Module()
            self.mlp.c_fc, self.mlp.c_proj = nn.Linear(C, 4 * C), nn.Linear(4 * C, C)

        def forward(self, x):
            B, t, _ = x.shape
            q, k, v = self.attn.c_attn(self.ln_1(x)).split(C, dim=2)
            heads = lambda z: z.view(B, t, H, C // H).transpose(1, 2)
            y = F.scaled_dot_product_attention(heads(q), heads(k), heads(v), is_causal=True)
            x = x + self.attn.c_proj(y.transpose(1, 2).reshape(B, t, C))
            return x + self.mlp.c_proj(F.gelu(self.mlp.c_fc(self.ln_2(x))))

    class Gpt(nn.Module):
        def __init__(self):
            super().__init__()
            self.transformer = nn.ModuleDict(dict(
                wte=nn.Embedding(V, C), wpe=nn.Embedding(T, C),
                h=nn.ModuleList([Block() for _ in range(L)]), ln_f=nn.LayerNorm(C)))
            self.lm_head = nn.Linear(C, V, bias=False)
            self.lm_head.weight = self.transformer.wte.weight

        def forward(self, ids):
            t = ids.shape[1]
            x = self.transformer.wte(ids) + self.transformer.wpe(torch.arange(t))
            for b in self.transformer.h:
                x = b(x)
            return self.lm_head(self.transformer.ln_f(x))

    m = Gpt()
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(torch.randn_like(p) * 0.2)
    ids = torch.randint(0, V, (2, 6))
    targets = torch.randint(0, V, (2, 6))
    logits = m(ids)
    loss = F.cross_entropy(logits.view(-1, V), targets.view(-1))
    loss.backward()
    tensors = {"ids": ids.float(), "targets": targets.float(), "logits": logits.detach(), "loss": loss.detach().reshape(1)}
    for name, p in m.state_dict(keep_vars=True).items():
        tensors["param." + name] = p.detach().clone()
        tensors["grad_param." + name] = p.grad.clone()
    save_file({k: t.contiguous() for k, t in tensors.items()}, os.path.join(OUT, "gpt_tiny.safetensors"),
              metadata=dict(V=str(V), T=str(T), L=str(L), H=str(H), C=str(C)))


def quantized():
    """Dynamically quantized Linear layers (fbgemm, PyTorch's x86 engine),
    with activations on the full 8 bits (`reduce_range=False`, as nabla
    quantizes them): the weight's integers and scales, the activations'
    scale and zero point, and the output."""
    from torch.ao.quantization import MinMaxObserver, PerChannelMinMaxObserver
    torch.manual_seed(11)
    torch.backends.quantized.engine = "x86"
    lin = torch.nn.Linear(70, 21)
    x = rand(37, 70) * 2 + 0.5
    for per_channel in (False, True):
        if per_channel:
            obs = PerChannelMinMaxObserver(dtype=torch.qint8, qscheme=torch.per_channel_symmetric)
        else:
            obs = MinMaxObserver(dtype=torch.qint8, qscheme=torch.per_tensor_symmetric)
        obs(lin.weight)
        scale, zero = obs.calculate_qparams()
        if per_channel:
            qw = torch.quantize_per_channel(lin.weight.detach(), scale, zero, 0, torch.qint8)
        else:
            qw = torch.quantize_per_tensor(lin.weight.detach(), float(scale), int(zero), torch.qint8)
        packed = torch.ops.quantized.linear_prepack(qw, lin.bias.detach())
        out = torch.ops.quantized.linear_dynamic(x, packed, reduce_range=False)
        x_scale, x_zero = torch._choose_qparams_per_tensor(x, False)
        name = "quantized_linear_per_channel" if per_channel else "quantized_linear"
        save_file({"x": x.contiguous(), "weight": lin.weight.detach().contiguous(),
                   "bias": lin.bias.detach().contiguous(), "qweight": qw.int_repr().float().contiguous(),
                   "scales": scale.float().reshape(-1).contiguous(),
                   "x_qparams": torch.tensor([x_scale, float(x_zero)]), "out": out.contiguous()},
                  os.path.join(OUT, name + ".safetensors"), metadata={"torch": torch.__version__})


def quantized_conv():
    """A statically quantized convolution (x86 engine): the input's scale
    and zero point from a MinMaxObserver over three calibration batches
    (quint8, all 256 levels, as nabla calibrates), the weight per output
    channel, symmetric; the exact output of those integers (f64), and
    PyTorch's own quantized convolution, whose output is requantized to
    8 bits with parameters from the exact output's range."""
    from torch.ao.quantization import MinMaxObserver, PerChannelMinMaxObserver
    torch.manual_seed(13)
    torch.backends.quantized.engine = "x86"
    conv = torch.nn.Conv2d(6, 16, 5, padding=1)
    calib = rand(24, 6, 12, 12)
    x = rand(4, 6, 12, 12) * 0.8
    obs = MinMaxObserver(dtype=torch.quint8, qscheme=torch.per_tensor_affine, reduce_range=False)
    for batch in calib.split(8):
        obs(batch)
    sx, zx = obs.calculate_qparams()
    wobs = PerChannelMinMaxObserver(dtype=torch.qint8, qscheme=torch.per_channel_symmetric)
    wobs(conv.weight)
    sw, zw = wobs.calculate_qparams()
    qw = torch.quantize_per_channel(conv.weight.detach(), sw, zw, 0, torch.qint8)
    xq = torch.quantize_per_tensor(x, float(sx), int(zx), torch.quint8)
    bias = conv.bias.detach()
    exact = F.conv2d(xq.dequantize().double(), qw.dequantize().double(), bias.double(), padding=1).float()
    oobs = MinMaxObserver(dtype=torch.quint8, reduce_range=False)
    oobs(exact)
    so, zo = oobs.calculate_qparams()
    qconv = torch.ao.nn.quantized.Conv2d(6, 16, 5, padding=1)
    qconv.set_weight_bias(qw, bias)
    qconv.scale, qconv.zero_point = float(so), int(zo)
    out = qconv(xq).dequantize()
    save_file({"weight": conv.weight.detach().contiguous(), "bias": bias.contiguous(), "calib": calib,
               "x": x, "x_qparams": torch.tensor([float(sx), float(zx)]),
               "qweight": qw.int_repr().float().contiguous(), "scales": sw.float().contiguous(),
               "exact": exact.contiguous(), "out": out.contiguous(), "out_scale": torch.tensor([float(so)])},
              os.path.join(OUT, "quantized_conv.safetensors"), metadata={"torch": torch.__version__})


def quantized_lstm():
    """A dynamically quantized LSTM as nabla computes it, composed of
    PyTorch's quantized ops (fbgemm, activations on 8 bits): the input
    projection of the whole sequence in one `linear_dynamic`, then per step
    `linear_dynamic` of h (quantized per call) and the cell in float."""
    from torch.ao.quantization import MinMaxObserver
    torch.manual_seed(12)
    torch.backends.quantized.engine = "x86"
    lstm = torch.nn.LSTM(6, 8, batch_first=True)
    x = rand(5, 7, 6)

    def q(w):
        obs = MinMaxObserver(dtype=torch.qint8, qscheme=torch.per_tensor_symmetric)
        obs(w)
        scale, zero = obs.calculate_qparams()
        return torch.quantize_per_tensor(w.detach(), float(scale), int(zero), torch.qint8)

    ih = torch.ops.quantized.linear_prepack(q(lstm.weight_ih_l0), None)
    hh = torch.ops.quantized.linear_prepack(q(lstm.weight_hh_l0), (lstm.bias_ih_l0 + lstm.bias_hh_l0).detach())
    projected = torch.ops.quantized.linear_dynamic(x.reshape(-1, 6), ih, reduce_range=False).reshape(5, 7, 32)
    h, c = torch.zeros(5, 8), torch.zeros(5, 8)
    outs = []
    for t in range(7):
        z = projected[:, t] + torch.ops.quantized.linear_dynamic(h, hh, reduce_range=False)
        i, f, g, o = z.chunk(4, 1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        outs.append(h)
    tensors = {"x": x, "out": torch.stack(outs, 1)}
    for name, p in lstm.state_dict().items():
        tensors["param." + name] = p.detach().clone()
    save_file({k: v.contiguous() for k, v in tensors.items()},
              os.path.join(OUT, "quantized_lstm.safetensors"), metadata={"torch": torch.__version__})


def halves():
    """f32 values rounded to bfloat16 and float16 by PyTorch: edge values
    (signed zeros, infinities, NaN, the formats' largest and smallest,
    subnormals, ties) and random ones over many magnitudes; the bits of
    each result."""
    torch.manual_seed(13)
    edges = [0.0, -0.0, 1.0, -1.0, float("inf"), float("-inf"), float("nan"), 3.4028234663852886e38,
             1.1754943508222875e-38, 1e-40, 1e-45, 65504.0, 65519.0, 65520.0, 65536.0, 6.103515625e-05,
             5.960464477539063e-08, 2.9802322387695312e-08, 4.470348358154297e-08, 1 + 2 ** -8, 1 + 3 * 2 ** -8,
             1 + 2 ** -11, 1 + 3 * 2 ** -11, -2.5, 3.140625, 1e-8, -7e-6]
    values = torch.cat([torch.tensor(edges, dtype=torch.float32),
                        torch.randn(2000) * torch.exp(torch.empty(2000).uniform_(-30, 30))])
    bf16 = values.to(torch.bfloat16).view(torch.int16).to(torch.int32) & 0xFFFF
    f16 = values.to(torch.float16).view(torch.int16).to(torch.int32) & 0xFFFF
    save_file({"x": values, "bf16_bits": bf16, "f16_bits": f16},
              os.path.join(OUT, "halves.safetensors"), metadata={"torch": torch.__version__})


def autocast():
    """bf16 mixed precision (issue 22): a linear layer, a batched matmul and
    a convolution under torch.autocast("cpu", dtype=torch.bfloat16), forward and
    backward; with, for each output and gradient, the same product of the
    operands PyTorch rounds to bfloat16, summed in f64 (`exact_*`): what
    nabla computes, up to its f32 sums, before autocast rounds the result
    to bfloat16."""
    torch.manual_seed(17)
    b16 = lambda t: t.to(torch.bfloat16).double()
    tensors = {}
    x, w, b = rand(37, 70), rand(50, 70) * 0.2, rand(50)
    g = rand(37, 50)
    leaves = [t.clone().requires_grad_(True) for t in (x, w, b)]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = F.linear(*leaves)
    y.backward(g.to(y.dtype))
    tensors.update({"linear_x": x, "linear_w": w, "linear_b": b, "linear_grad_out": g,
                    "linear_out": y.float(), "linear_grad_x": leaves[0].grad, "linear_grad_w": leaves[1].grad,
                    "linear_exact_out": (b16(x) @ b16(w).T + b.double()).float(),
                    "linear_exact_grad_x": (b16(g) @ b16(w)).float(),
                    "linear_exact_grad_w": (b16(g).T @ b16(x)).float()})
    a, c = rand(3, 13, 40), rand(40, 29)
    g = rand(3, 13, 29)
    leaves = [t.clone().requires_grad_(True) for t in (a, c)]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = torch.matmul(*leaves)
    y.backward(g.to(y.dtype))
    tensors.update({"matmul_a": a, "matmul_b": c, "matmul_grad_out": g, "matmul_out": y.float(),
                    "matmul_grad_a": leaves[0].grad, "matmul_grad_b": leaves[1].grad,
                    "matmul_exact_out": (b16(a) @ b16(c)).float(),
                    "matmul_exact_grad_a": (b16(g) @ b16(c).T).float(),
                    "matmul_exact_grad_b": (b16(a).transpose(1, 2) @ b16(g)).sum(0).float()})
    # a convolution (padding 1): PyTorch rounds its bias to bfloat16 too,
    # nabla keeps it f32; the exact gradients come from f64 autograd over
    # the rounded operands
    x, w, b = rand(4, 3, 9, 9), rand(8, 3, 3, 3) * 0.3, rand(8)
    g = rand(4, 8, 9, 9)
    leaves = [t.clone().requires_grad_(True) for t in (x, w, b)]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = F.conv2d(*leaves, padding=1)
    y.backward(g.to(y.dtype))
    exact = [b16(x).requires_grad_(True), b16(w).requires_grad_(True)]
    y_exact = F.conv2d(*exact, b.double(), padding=1)
    y_exact.backward(b16(g))
    tensors.update({"conv_x": x, "conv_w": w, "conv_b": b, "conv_grad_out": g, "conv_out": y.float(),
                    "conv_grad_x": leaves[0].grad, "conv_grad_w": leaves[1].grad,
                    "conv_exact_out": y_exact.detach().float(),
                    "conv_exact_grad_x": exact[0].grad.float(), "conv_exact_grad_w": exact[1].grad.float()})
    save_file({k: v.contiguous() for k, v in tensors.items()}, os.path.join(OUT, "autocast.safetensors"),
              metadata={"torch": torch.__version__})


def dtypes():
    """A state dict as PyTorch keeps it in several dtypes (issues 22, 27):
    a Linear's weight in bfloat16, its bias in float16, int64 labels past
    2^24 and in range; the f32 values they came from, PyTorch's logits of
    the layer computed in f32 from the stored halves, and its cross-entropy
    with the int64 targets."""
    torch.manual_seed(17)
    w, b, x = rand(5, 7), rand(5), rand(6, 7)
    w16, b16 = w.to(torch.bfloat16), b.to(torch.float16)
    logits = F.linear(x, w16.float(), b16.float())
    targets = torch.tensor([4, 0, 3, 3, 1, 2], dtype=torch.int64)
    big = torch.tensor([2 ** 24 + 1, 2 ** 53 + 1, -(2 ** 40) - 3], dtype=torch.int64)
    logits.requires_grad_(True)
    loss = F.cross_entropy(logits, targets)
    loss.backward()
    save_file({"weight": w16, "bias": b16, "weight_f32": w, "bias_f32": b, "x": x,
               "logits": logits.detach(), "targets": targets, "big": big, "loss": loss.detach().reshape(1),
               "grad_logits": logits.grad},
              os.path.join(OUT, "dtypes.safetensors"), metadata={"torch": torch.__version__})


GROUPS = ["main", "recurrent", "schedulers", "norms", "optimizers", "losses", "lenet", "conv_same",
          "pool_ceil", "activations", "random_configs", "recurrent_configs", "cells", "examples_pieces",
          "attention", "multihead_attention", "transformers", "gpt", "quantized", "quantized_conv", "quantized_lstm", "halves",
          "autocast", "dtypes"]


if __name__ == "__main__":
    import sys
    # `gen_fixtures.py quantized` rewrites that group alone
    for group in sys.argv[1:] or GROUPS:
        globals()[group]()

