#!/usr/bin/env python3
"""The PyTorch side of examples/pytorch/mnist_hogwild.rs: PyTorch's
`mnist_hogwild` example (pytorch/examples, mnist_hogwild/main.py and
train.py) written here for the shipped digits in data/mnist: processes
train one model in shared memory (Hogwild!), one thread each, then the
model is tested.

    python3 bench/pytorch_examples/mnist_hogwild.py --epochs 3 --num-processes 2

Prints each worker's time in its training loop, the time from starting
the processes to their end (`S s training`, which includes each spawned
process importing torch and reading the data), and the test line."""
import argparse
import gzip
import struct
import time

import torch
import torch.multiprocessing as mp
import torch.nn as nn
import torch.nn.functional as F


def idx(path):
    b = gzip.open(path).read()
    nd = b[3]
    dims = struct.unpack(">" + "I" * nd, b[4:4 + 4 * nd])
    return torch.frombuffer(bytearray(b[4 + 4 * nd:]), dtype=torch.uint8).reshape(dims)


def load(kind):
    d = "data/mnist/"
    x = ((idx(d + kind + "-images-idx3-ubyte.gz").float() / 255 - 0.1307) / 0.3081).unsqueeze(1)
    return x, idx(d + kind + "-labels-idx1-ubyte.gz").long()


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 10, kernel_size=5)
        self.conv2 = nn.Conv2d(10, 20, kernel_size=5)
        self.conv2_drop = nn.Dropout2d()
        self.fc1 = nn.Linear(320, 50)
        self.fc2 = nn.Linear(50, 10)

    def forward(self, x):
        x = F.relu(F.max_pool2d(self.conv1(x), 2))
        x = F.relu(F.max_pool2d(self.conv2_drop(self.conv2(x)), 2))
        x = x.view(-1, 320)
        x = F.relu(self.fc1(x))
        x = F.dropout(x, training=self.training)
        return F.log_softmax(self.fc2(x), dim=1)


def train(rank, a, model):
    torch.set_num_threads(1)
    torch.manual_seed(a.seed + rank)
    x, y = load("train")
    optimizer = torch.optim.SGD(model.parameters(), lr=a.lr, momentum=a.momentum)
    model.train()
    start = time.time()
    for _ in range(a.epochs):
        perm = torch.randperm(len(x))
        for i in range(0, len(x), a.batch_size):
            b = perm[i:i + a.batch_size]
            optimizer.zero_grad()
            loss = F.nll_loss(model(x[b]), y[b])
            loss.backward()
            optimizer.step()
    print(f"worker {rank}: {time.time() - start:.2f} s in its loop", flush=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--momentum", type=float, default=0.5)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--num-processes", type=int, default=2)
    a = p.parse_args()
    torch.manual_seed(a.seed)
    mp.set_start_method("spawn")
    model = Net()
    model.share_memory()
    start = time.time()
    processes = []
    for rank in range(a.num_processes):
        proc = mp.Process(target=train, args=(rank, a, model))
        proc.start()
        processes.append(proc)
    for proc in processes:
        proc.join()
    print(f"{time.time() - start:.2f} s training")
    vx, vy = load("t10k")
    model.eval()
    with torch.no_grad():
        out = model(vx)
        loss = F.nll_loss(out, vy, reduction="sum").item() / len(vx)
        correct = (out.argmax(1) == vy).sum().item()
    print(f"\nTest set: Average loss: {loss:.4f}, Accuracy: {correct}/{len(vx)} ({100 * correct / len(vx):.0f}%)\n")


if __name__ == "__main__":
    main()
