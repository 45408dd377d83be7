#!/usr/bin/env python3
"""The PyTorch side of examples/pytorch/mnist.rs: the network, optimizer,
schedule and settings of PyTorch's `mnist` example (pytorch/examples,
mnist/main.py), written here for the shipped digits in data/mnist, with the
data already in tensors (as nabla's loader hands over ready batches).

    python3 bench/pytorch_examples/mnist.py --threads 2 --epochs 3

Prints one line per epoch: `epoch E: test loss L accuracy C/N train S s`."""
import argparse
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
        self.conv1 = nn.Conv2d(1, 32, 3, 1)
        self.conv2 = nn.Conv2d(32, 64, 3, 1)
        self.dropout1 = nn.Dropout(0.25)
        self.dropout2 = nn.Dropout(0.5)
        self.fc1 = nn.Linear(9216, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = F.relu(self.conv1(x))
        x = F.relu(self.conv2(x))
        x = F.max_pool2d(x, 2)
        x = self.dropout1(x)
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = self.dropout2(x)
        return F.log_softmax(self.fc2(x), dim=1)


def main(net=Net, lr=1.0):
    """The training program for the network `net` makes (mnist_rnn.py
    passes its own, with its learning rate)."""
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--epochs", type=int, default=14)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--test-batch-size", type=int, default=1000)
    p.add_argument("--lr", type=float, default=lr)
    p.add_argument("--gamma", type=float, default=0.7)
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    d = "data/mnist/"
    norm = lambda x: ((x.float() / 255 - 0.1307) / 0.3081).unsqueeze(1)
    tx, ty = norm(idx(d + "train-images-idx3-ubyte.gz")), idx(d + "train-labels-idx1-ubyte.gz").long()
    vx, vy = norm(idx(d + "t10k-images-idx3-ubyte.gz")), idx(d + "t10k-labels-idx1-ubyte.gz").long()
    model = net()
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
