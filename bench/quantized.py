#!/usr/bin/env python3
"""int8 against f32, nabla against PyTorch, on one trained run of the MLP,
of lstm-rows or of LeNet.

nabla's side is `nabla quantize RUN` (f32 and int8 forward passes over the
test set in batches, the data already in memory, the best of three). PyTorch's side loads the
run's f32 weights (`model.safetensors`, PyTorch's names) into the same
model, quantizes it with `torch.ao.quantization.quantize_dynamic` (Linear
and LSTM layers, qint8 weights, activations quantized when they come: the
same scheme) and times the same
passes (the best of three). For LeNet both sides quantize statically
after calibrating on the first `--calibrate` batches of 64 training
images: nabla with `nabla quantize --calibrate N` (conv2 and the Linear
layers int8, conv1 f32), PyTorch with eager-mode static quantization of
the whole network (`QuantStub`, the x86 engine's default qconfig,
`prepare`, calibration, `convert`). The two alternate, `--rounds` times at each thread count; the best
time of each is kept.

    nabla train --model mlp --epochs 10 --data /usr/share/datasets/fashion-mnist --out /tmp/mlp
    python3 bench/quantized.py --python ~/torch/bin/python --run /tmp/mlp

The driver uses only the standard library; `--torch-side` is the part
that runs under PyTorch's interpreter."""
import argparse
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NORMALIZE = {"fashion-mnist": (0.2860, 0.3530), "mnist": (0.1307, 0.3081)}


def torch_side(run, data, dataset, batch, threads, repeats, calibrate):
    import gzip
    import time

    import torch
    from safetensors.torch import load_file

    torch.set_num_threads(threads)
    raw = gzip.open(os.path.join(data, "t10k-images-idx3-ubyte.gz")).read()[16:]
    labels = torch.frombuffer(bytearray(gzip.open(os.path.join(data, "t10k-labels-idx1-ubyte.gz")).read()[8:]),
                              dtype=torch.uint8).long()
    mean, std = NORMALIZE[dataset]
    x = (torch.frombuffer(bytearray(raw), dtype=torch.uint8).float().reshape(-1, 1, 28, 28) / 255 - mean) / std
    weights = load_file(os.path.join(run, "model.safetensors"))
    static = "conv1.weight" in weights
    if static:
        nn = torch.nn

        class LeNet(nn.Module):
            """nabla's zoo lenet, with the stubs eager-mode static
            quantization needs."""
            def __init__(self):
                super().__init__()
                self.quant, self.dequant = torch.ao.quantization.QuantStub(), torch.ao.quantization.DeQuantStub()
                self.conv1, self.conv2 = nn.Conv2d(1, 6, 5, padding=2), nn.Conv2d(6, 16, 5)
                self.fc1, self.fc2, self.fc3 = nn.Linear(400, 120), nn.Linear(120, 84), nn.Linear(84, 10)
                self.relus = nn.ModuleList(nn.ReLU() for _ in range(4))
                self.pool = nn.MaxPool2d(2)

            def forward(self, x):
                x = self.quant(x)
                x = self.pool(self.relus[0](self.conv1(x)))
                x = self.pool(self.relus[1](self.conv2(x)))
                x = torch.flatten(x, 1)
                x = self.relus[3](self.fc2(self.relus[2](self.fc1(x))))
                return self.dequant(self.fc3(x))
        model = LeNet()
    elif "lstm.weight_ih_l0" in weights:
        class LstmRows(torch.nn.Module):
            """nabla's lstm-rows: each image's 28 rows through an LSTM of
            128 units, its last hidden state to 10 classes."""
            def __init__(self):
                super().__init__()
                self.lstm = torch.nn.LSTM(28, 128, batch_first=True)
                self.fc = torch.nn.Linear(128, 10)

            def forward(self, x):
                _, (h, _) = self.lstm(x.squeeze(1))
                return self.fc(h[-1])
        model = LstmRows()
    else:
        model = torch.nn.Sequential()
        model.add_module("0", torch.nn.Flatten())
        model.add_module("fc1", torch.nn.Linear(784, 256))
        model.add_module("2", torch.nn.ReLU())
        model.add_module("fc2", torch.nn.Linear(256, 128))
        model.add_module("4", torch.nn.ReLU())
        model.add_module("fc3", torch.nn.Linear(128, 10))
    model.load_state_dict(weights)
    model.eval()
    if static:
        import copy
        torch.backends.quantized.engine = "x86"
        raw = gzip.open(os.path.join(data, "train-images-idx3-ubyte.gz")).read()[16:16 + calibrate * 64 * 784]
        calib = (torch.frombuffer(bytearray(raw), dtype=torch.uint8).float().reshape(-1, 1, 28, 28) / 255
                 - mean) / std
        quantized = copy.deepcopy(model)
        quantized.qconfig = torch.ao.quantization.get_default_qconfig("x86")
        torch.ao.quantization.prepare(quantized, inplace=True)
        with torch.no_grad():
            for i in range(0, len(calib), 64):
                quantized(calib[i:i + 64])
        torch.ao.quantization.convert(quantized, inplace=True)
    else:
        quantized = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear, torch.nn.LSTM},
                                                           dtype=torch.qint8)

    def passes(m):
        best, correct = float("inf"), 0
        with torch.no_grad():
            for _ in range(repeats):
                start, correct = time.perf_counter(), 0
                for i in range(0, len(x), batch):
                    correct += (m(x[i:i + batch]).argmax(1) == labels[i:i + batch]).sum().item()
                best = min(best, time.perf_counter() - start)
        return correct, best

    for name, m in (("f32", model), ("int8", quantized)):
        correct, secs = passes(m)
        print(f"{name} {100 * correct / len(x):.2f} {secs:.4f}")


def has_convolutions(run):
    """Whether the run's weights (a safetensors header) hold a conv1."""
    import json
    import struct
    with open(os.path.join(run, "model.safetensors"), "rb") as f:
        size = struct.unpack("<Q", f.read(8))[0]
        return "conv1.weight" in json.loads(f.read(size))


def nabla_side(binary, run, batch, threads, calibrate):
    env = dict(os.environ, NABLA_NUM_THREADS=str(threads))
    static = ["--calibrate", str(calibrate)] if has_convolutions(run) else []
    out = subprocess.run([binary, "quantize", run, "--batch-size", str(batch), "-o", "/tmp/nabla-bench-int8.safetensors"]
                         + static, env=env, capture_output=True, text=True, check=True).stdout
    rows = {}
    for name in ("f32", "int8"):
        m = re.search(rf"^{name}\s+([0-9.]+) kB\s+([0-9.]+)%\s+([0-9.]+) s", out, re.M)
        rows[name] = (float(m.group(2)), float(m.group(3)), float(m.group(1)))
    return rows


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--python", default=sys.executable)
    p.add_argument("--run", required=True)
    p.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    p.add_argument("--dataset", default="fashion-mnist")
    p.add_argument("--binary", default=os.path.join(ROOT, "target", "release", "nabla"))
    p.add_argument("--batch", type=int, default=1000)
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--calibrate", type=int, default=10, help="calibration batches of 64 (LeNet)")
    p.add_argument("--torch-side", action="store_true")
    a = p.parse_args()
    if a.torch_side:
        torch_side(a.run, a.data, a.dataset, a.batch, a.threads[0], a.rounds, a.calibrate)
        return
    print("| threads | side | f32 accuracy | int8 accuracy | f32 s | int8 s | int8 speed-up |")
    print("|---|---|---|---|---|---|---|")
    for threads in a.threads:
        best = {"nabla": {}, "PyTorch": {}}
        for _ in range(a.rounds):
            for name, (acc, secs, _) in nabla_side(a.binary, a.run, a.batch, threads, a.calibrate).items():
                old = best["nabla"].get(name, (acc, float("inf")))
                best["nabla"][name] = (acc, min(old[1], secs))
            out = subprocess.run([a.python, __file__, "--torch-side", "--run", a.run, "--data", a.data,
                                  "--dataset", a.dataset, "--batch", str(a.batch), "--threads", str(threads),
                                  "--rounds", "3", "--calibrate", str(a.calibrate)],
                                 capture_output=True, text=True, check=True).stdout
            for line in out.splitlines():
                name, acc, secs = line.split()
                old = best["PyTorch"].get(name, (float(acc), float("inf")))
                best["PyTorch"][name] = (float(acc), min(old[1], float(secs)))
        for side, rows in best.items():
            (fa, fs), (qa, qs) = rows["f32"], rows["int8"]
            print(f"| {threads} | {side} | {fa:.2f}% | {qa:.2f}% | {fs:.4f} | {qs:.4f} | {fs / qs:.2f}× |")
        n, t = best["nabla"]["int8"][1], best["PyTorch"]["int8"][1]
        print(f"| {threads} | int8, PyTorch's time / nabla's | | | | | {t / n:.2f}× |")


if __name__ == "__main__":
    main()
