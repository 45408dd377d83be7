#!/usr/bin/env python3
"""The PyTorch side of examples/pytorch/mnist_forward_forward.rs: the
Forward-Forward algorithm and settings of PyTorch's `mnist_forward_forward`
example (pytorch/examples, mnist_forward_forward/main.py), written here for
the shipped digits in data/mnist (full batch).

    python3 bench/pytorch_examples/mnist_forward_forward.py --epochs 100 --threads 2

Prints `Loss:` lines, `train error: E`, `test error: E` and
`layer L: S s training`."""
import argparse
import gzip
import struct
import time

import torch
import torch.nn as nn


def idx(path):
    b = gzip.open(path).read()
    nd = b[3]
    dims = struct.unpack(">" + "I" * nd, b[4:4 + 4 * nd])
    return torch.frombuffer(bytearray(b[4 + 4 * nd:]), dtype=torch.uint8).reshape(dims)


def overlay_y_on_x(x, y):
    x_ = x.clone()
    x_[:, :10] *= 0.0
    x_[range(x.shape[0]), y] = x.max()
    return x_


class Layer(nn.Linear):
    def __init__(self, in_features, out_features, a):
        super().__init__(in_features, out_features)
        self.relu = nn.ReLU()
        self.opt = torch.optim.Adam(self.parameters(), lr=a.lr)
        self.threshold, self.num_epochs, self.log_interval = a.threshold, a.epochs, a.log_interval

    def forward(self, x):
        x_direction = x / (x.norm(2, 1, keepdim=True) + 1e-4)
        return self.relu(torch.mm(x_direction, self.weight.T) + self.bias.unsqueeze(0))

    def train_layer(self, x_pos, x_neg):
        for i in range(self.num_epochs):
            g_pos = self.forward(x_pos).pow(2).mean(1)
            g_neg = self.forward(x_neg).pow(2).mean(1)
            loss = torch.log(1 + torch.exp(torch.cat([-g_pos + self.threshold, g_neg - self.threshold]))).mean()
            self.opt.zero_grad()
            loss.backward()
            self.opt.step()
            if i % self.log_interval == 0:
                print("Loss: ", loss.item())
        return self.forward(x_pos).detach(), self.forward(x_neg).detach()


class Net(nn.Module):
    def __init__(self, dims, a):
        super().__init__()
        self.layers = [Layer(dims[d], dims[d + 1], a) for d in range(len(dims) - 1)]

    def predict(self, x):
        goodness_per_label = []
        for label in range(10):
            h = overlay_y_on_x(x, label)
            goodness = []
            for layer in self.layers:
                h = layer(h)
                goodness += [h.pow(2).mean(1)]
            goodness_per_label += [sum(goodness).unsqueeze(1)]
        return torch.cat(goodness_per_label, 1).argmax(1)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--epochs", type=int, default=1000)
    p.add_argument("--lr", type=float, default=0.03)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--threshold", type=float, default=2)
    p.add_argument("--log-interval", type=int, default=10)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    d = "data/mnist/"
    norm = lambda x: ((x.float() / 255 - 0.1307) / 0.3081).reshape(len(x), 784)
    x, y = norm(idx(d + "train-images-idx3-ubyte.gz")), idx(d + "train-labels-idx1-ubyte.gz").long()
    x_te, y_te = norm(idx(d + "t10k-images-idx3-ubyte.gz")), idx(d + "t10k-labels-idx1-ubyte.gz").long()
    net = Net([784, 500, 500], a)
    x_pos = overlay_y_on_x(x, y)
    x_neg = overlay_y_on_x(x, y[torch.randperm(x.size(0))])
    h_pos, h_neg = x_pos, x_neg
    for i, layer in enumerate(net.layers):
        print("training layer", i, "...")
        start = time.time()
        h_pos, h_neg = layer.train_layer(h_pos, h_neg)
        print(f"layer {i}: {time.time() - start:.2f} s training")
    with torch.no_grad():
        print("train error:", 1.0 - net.predict(x).eq(y).float().mean().item())
        print("test error:", 1.0 - net.predict(x_te).eq(y_te).float().mean().item())


if __name__ == "__main__":
    main()
