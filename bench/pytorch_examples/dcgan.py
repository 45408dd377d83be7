#!/usr/bin/env python3
"""The PyTorch side of examples/pytorch/dcgan.rs: the DCGAN of PyTorch's
C++ example (pytorch/examples, cpp/dcgan/dcgan.cpp) written here in Python
for the shipped digits in data/mnist scaled to [-1, 1], data in tensors.

    python3 bench/pytorch_examples/dcgan.py --epochs 1 --threads 2

Prints the loss lines every 10 batches and `epoch E: S s training`."""
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


class Generator(nn.Module):
    def __init__(self, noise):
        super().__init__()
        self.conv1 = nn.ConvTranspose2d(noise, 256, 4, bias=False)
        self.batch_norm1 = nn.BatchNorm2d(256)
        self.conv2 = nn.ConvTranspose2d(256, 128, 3, stride=2, padding=1, bias=False)
        self.batch_norm2 = nn.BatchNorm2d(128)
        self.conv3 = nn.ConvTranspose2d(128, 64, 4, stride=2, padding=1, bias=False)
        self.batch_norm3 = nn.BatchNorm2d(64)
        self.conv4 = nn.ConvTranspose2d(64, 1, 4, stride=2, padding=1, bias=False)

    def forward(self, x):
        x = F.relu(self.batch_norm1(self.conv1(x)))
        x = F.relu(self.batch_norm2(self.conv2(x)))
        x = F.relu(self.batch_norm3(self.conv3(x)))
        return torch.tanh(self.conv4(x))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    x = ((idx("data/mnist/train-images-idx3-ubyte.gz").float() / 255 - 0.5) / 0.5).unsqueeze(1)
    generator = Generator(100)
    discriminator = nn.Sequential(
        nn.Conv2d(1, 64, 4, stride=2, padding=1, bias=False), nn.LeakyReLU(0.2),
        nn.Conv2d(64, 128, 4, stride=2, padding=1, bias=False), nn.BatchNorm2d(128), nn.LeakyReLU(0.2),
        nn.Conv2d(128, 256, 4, stride=2, padding=1, bias=False), nn.BatchNorm2d(256), nn.LeakyReLU(0.2),
        nn.Conv2d(256, 1, 3, stride=1, padding=0, bias=False), nn.Sigmoid())
    g_opt = torch.optim.Adam(generator.parameters(), lr=2e-4, betas=(0.5, 0.5))
    d_opt = torch.optim.Adam(discriminator.parameters(), lr=2e-4, betas=(0.5, 0.5))
    batches = (len(x) + 63) // 64
    for epoch in range(1, a.epochs + 1):
        start = time.time()
        perm = torch.randperm(len(x))
        for i in range(batches):
            real_images = x[perm[i * 64:(i + 1) * 64]]
            n = len(real_images)
            discriminator.zero_grad()
            real_labels = torch.empty(n).uniform_(0.8, 1.0)
            d_loss_real = F.binary_cross_entropy(discriminator(real_images).reshape(n), real_labels)
            d_loss_real.backward()
            fake_images = generator(torch.randn(n, 100, 1, 1))
            d_loss_fake = F.binary_cross_entropy(discriminator(fake_images.detach()).reshape(n), torch.zeros(n))
            d_loss_fake.backward()
            d_loss = d_loss_real + d_loss_fake
            d_opt.step()
            generator.zero_grad()
            g_loss = F.binary_cross_entropy(discriminator(fake_images).reshape(n), torch.ones(n))
            g_loss.backward()
            g_opt.step()
            if (i + 1) % 10 == 0:
                print(f"[{epoch:2d}/{a.epochs:2d}][{i + 1:3d}/{batches:3d}] D_loss: {d_loss.item():.4f} | G_loss: {g_loss.item():.4f}")
        print(f"epoch {epoch}: {time.time() - start:.2f} s training", flush=True)


if __name__ == "__main__":
    main()
