#!/usr/bin/env python3
"""PyTorch side of bench/compare.py: trains one of nabla's zoo models, built
the same way in PyTorch, on Fashion-MNIST with the data already in tensors
(PyTorch's best case: no DataLoader), and prints one JSON line with the
seconds of each training epoch, of the last test pass, and the accuracy.

    python3 bench/pytorch_models.py --model lenet|mlp|lstm-rows|gru-rows|rnn-rows|cnn32 --threads 2 --epochs 1

--precision bf16 runs the forward passes (training and test) inside
torch.autocast("cpu", dtype=torch.bfloat16): PyTorch's CPU mixed precision.
"""
import contextlib
import argparse
import gzip
import json
import struct
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

DEBIAN = "/usr/share/datasets/fashion-mnist"
MEAN, STD = 0.2860, 0.3530  # nabla's constants for Fashion-MNIST


def idx(path):
    b = gzip.open(path).read()
    nd = b[3]
    dims = struct.unpack(">" + "I" * nd, b[4 : 4 + 4 * nd])
    return torch.frombuffer(bytearray(b[4 + 4 * nd :]), dtype=torch.uint8).reshape(dims)


def load(data, split):
    x = idx(f"{data}/{split}-images-idx3-ubyte.gz").float() / 255
    y = idx(f"{data}/{split}-labels-idx1-ubyte.gz").long()
    return ((x - MEAN) / STD).unsqueeze(1), y


class LeNet(nn.Module):  # the reference CNN in its working form (nabla's zoo "lenet")
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5, padding=2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1, self.fc2, self.fc3 = nn.Linear(400, 120), nn.Linear(120, 84), nn.Linear(84, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2).flatten(1)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


class Cnn32(nn.Module):  # bench/models/cnn32.toml: PyTorch's mnist example net without dropout
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3)
        self.conv2 = nn.Conv2d(32, 64, 3)
        self.fc1 = nn.Linear(9216, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv2(F.relu(self.conv1(x)))), 2)
        return self.fc2(F.relu(self.fc1(torch.flatten(x, 1))))


class Mlp(nn.Module):  # "mlp": 784-256-128-10
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.fc3 = nn.Linear(784, 256), nn.Linear(256, 128), nn.Linear(128, 10)

    def forward(self, x):
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x.flatten(1))))))


class LstmRows(nn.Module):  # "lstm-rows": 28 steps of 28 features, last hidden state
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(28, 128, batch_first=True)
        self.fc = nn.Linear(128, 10)

    def forward(self, x):
        _, (h, _) = self.lstm(x.squeeze(1))
        return self.fc(h[-1])


class GruRows(nn.Module):  # "gru-rows": the same with a GRU
    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(28, 128, batch_first=True)
        self.fc = nn.Linear(128, 10)

    def forward(self, x):
        _, h = self.gru(x.squeeze(1))
        return self.fc(h[-1])


class RnnRows(nn.Module):  # "rnn-rows": the same with a plain (tanh) RNN
    def __init__(self):
        super().__init__()
        self.rnn = nn.RNN(28, 128, batch_first=True)
        self.fc = nn.Linear(128, 10)

    def forward(self, x):
        _, h = self.rnn(x.squeeze(1))
        return self.fc(h[-1])


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", default="lenet", choices=["lenet", "mlp", "lstm-rows", "gru-rows", "rnn-rows", "cnn32"])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--test-batch-size", type=int, default=1000)
    p.add_argument("--optimizer", default="sgd", choices=["sgd", "adam"])
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--data", default=DEBIAN)
    p.add_argument("--precision", default="f32", choices=["f32", "bf16"])
    p.add_argument("--train-fraction", type=float, default=1.0,
                   help="train on this share of the images (the first ones; for timing)")
    a = p.parse_args()
    def autocast():
        if a.precision == "bf16":
            return torch.autocast("cpu", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    tx, ty = load(a.data, "train")
    keep = round(a.train_fraction * len(tx))
    tx, ty = tx[:keep], ty[:keep]
    vx, vy = load(a.data, "t10k")
    model = {"lenet": LeNet, "mlp": Mlp, "lstm-rows": LstmRows, "gru-rows": GruRows, "rnn-rows": RnnRows,
             "cnn32": Cnn32}[a.model]()
    if a.optimizer == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=a.lr, momentum=a.momentum)
    else:
        opt = torch.optim.Adam(model.parameters(), lr=a.lr)
    epochs = []
    for _ in range(a.epochs):
        model.train()
        t = time.perf_counter()
        perm = torch.randperm(len(tx))
        for i in range(0, len(tx), a.batch_size):
            b = perm[i : i + a.batch_size]
            opt.zero_grad()
            with autocast():
                loss = F.cross_entropy(model(tx[b]), ty[b])
            loss.backward()
            opt.step()
        epochs.append(time.perf_counter() - t)
        model.eval()
        t = time.perf_counter()
        correct = 0
        with torch.no_grad():
            for i in range(0, len(vx), a.test_batch_size):
                with autocast():
                    out = model(vx[i : i + a.test_batch_size])
                correct += (out.argmax(1) == vy[i : i + a.test_batch_size]).sum().item()
        test = time.perf_counter() - t
    print(json.dumps({"train_seconds": epochs, "test_seconds": test, "accuracy": correct / len(vx)}))


if __name__ == "__main__":
    main()
