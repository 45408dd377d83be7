#!/usr/bin/env python3
"""The PyTorch side of examples/pytorch/mnist_rnn.rs: the network,
optimizer, schedule and settings of PyTorch's `mnist_rnn` example
(pytorch/examples, mnist_rnn/main.py), written here for the shipped digits
in data/mnist, with the data already in tensors.

    python3 bench/pytorch_examples/mnist_rnn.py --threads 2 --epochs 3

Prints one line per epoch: `epoch E: test loss L accuracy C/N train S s`."""
import argparse
import warnings
import gzip
import struct
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def idx(path):
    b = gzip.open(path).read()
    nd = b[3]
    dims = struct.unpack(">" + "I" * nd, b[4:4 + 4 * nd])
    return torch.frombuffer(bytearray(b[4 + 4 * nd:]), dtype=torch.uint8).reshape(dims)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.LSTM(input_size=28, hidden_size=64, batch_first=True)
        self.batchnorm = nn.BatchNorm1d(64)
        self.dropout1 = nn.Dropout2d(0.25)
        self.dropout2 = nn.Dropout2d(0.5)
        self.fc1 = nn.Linear(64, 32)
        self.fc2 = nn.Linear(32, 10)

    def forward(self, x):
        output, _ = self.rnn(x.reshape(-1, 28, 28))
        output = self.batchnorm(output[:, -1, :])
        output = self.dropout1(output)
        output = F.relu(self.fc1(output))
        output = self.dropout2(output)
        return F.log_softmax(self.fc2(output), dim=1)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--epochs", type=int, default=14)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--test-batch-size", type=int, default=1000)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--gamma", type=float, default=0.7)
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    warnings.filterwarnings("ignore", message="dropout2d")  # the original's 2-d input
    torch.manual_seed(a.seed)
    d = "data/mnist/"
    norm = lambda x: ((x.float() / 255 - 0.1307) / 0.3081).unsqueeze(1)
    tx, ty = norm(idx(d + "train-images-idx3-ubyte.gz")), idx(d + "train-labels-idx1-ubyte.gz").long()
    vx, vy = norm(idx(d + "t10k-images-idx3-ubyte.gz")), idx(d + "t10k-labels-idx1-ubyte.gz").long()
    model = Net()
    optimizer = torch.optim.Adadelta(model.parameters(), lr=a.lr)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=a.gamma)
    for epoch in range(1, a.epochs + 1):
        model.train()
        start = time.time()
        perm = torch.randperm(len(tx))
        for i in range(0, len(tx), a.batch_size):
            b = perm[i:i + a.batch_size]
            optimizer.zero_grad()
            loss = F.nll_loss(model(tx[b]), ty[b])
            loss.backward()
            optimizer.step()
        seconds = time.time() - start
        model.eval()
        loss, correct = 0.0, 0
        with torch.no_grad():
            for i in range(0, len(vx), a.test_batch_size):
                out = model(vx[i:i + a.test_batch_size])
                loss += F.nll_loss(out, vy[i:i + a.test_batch_size], reduction="sum").item()
                correct += (out.argmax(1) == vy[i:i + a.test_batch_size]).sum().item()
        print(f"epoch {epoch}: test loss {loss / len(vx):.4f} accuracy {correct}/{len(vx)} train {seconds:.2f} s",
              flush=True)
        scheduler.step()


if __name__ == "__main__":
    main()
