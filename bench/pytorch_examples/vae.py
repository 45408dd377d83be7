#!/usr/bin/env python3
"""The PyTorch side of examples/pytorch/vae.rs: the variational
auto-encoder, loss and settings of PyTorch's `vae` example
(pytorch/examples, vae/main.py), written here for the shipped digits in
data/mnist (pixels in [0, 1]) with the data already in tensors.

    python3 bench/pytorch_examples/vae.py --threads 2 --epochs 3

Prints per epoch `====> Epoch: E Average loss: L`, `====> Test set loss: L`
and `epoch E: S s training`."""
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


class VAE(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 400)
        self.fc21 = nn.Linear(400, 20)
        self.fc22 = nn.Linear(400, 20)
        self.fc3 = nn.Linear(20, 400)
        self.fc4 = nn.Linear(400, 784)

    def encode(self, x):
        h1 = F.relu(self.fc1(x))
        return self.fc21(h1), self.fc22(h1)

    def reparameterize(self, mu, logvar):
        std = torch.exp(0.5 * logvar)
        return mu + torch.randn_like(std) * std

    def decode(self, z):
        return torch.sigmoid(self.fc4(F.relu(self.fc3(z))))

    def forward(self, x):
        mu, logvar = self.encode(x.view(-1, 784))
        return self.decode(self.reparameterize(mu, logvar)), mu, logvar


def loss_function(recon_x, x, mu, logvar):
    bce = F.binary_cross_entropy(recon_x, x.view(-1, 784), reduction="sum")
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return bce + kld


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    d = "data/mnist/"
    tx = (idx(d + "train-images-idx3-ubyte.gz").float() / 255).unsqueeze(1)
    vx = (idx(d + "t10k-images-idx3-ubyte.gz").float() / 255).unsqueeze(1)
    model = VAE()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for epoch in range(1, a.epochs + 1):
        model.train()
        start, train_loss = time.time(), 0.0
        perm = torch.randperm(len(tx))
        for i in range(0, len(tx), a.batch_size):
            data = tx[perm[i:i + a.batch_size]]
            optimizer.zero_grad()
            recon, mu, logvar = model(data)
            loss = loss_function(recon, data, mu, logvar)
            loss.backward()
            train_loss += loss.item()
            optimizer.step()
        seconds = time.time() - start
        print(f"====> Epoch: {epoch} Average loss: {train_loss / len(tx):.4f}")
        model.eval()
        test_loss = 0.0
        with torch.no_grad():
            for i in range(0, len(vx), a.batch_size):
                data = vx[i:i + a.batch_size]
                recon, mu, logvar = model(data)
                test_loss += loss_function(recon, data, mu, logvar).item()
        print(f"====> Test set loss: {test_loss / len(vx):.4f}")
        print(f"epoch {epoch}: {seconds:.2f} s training", flush=True)


if __name__ == "__main__":
    main()
