#!/usr/bin/env python3
"""PyTorch side of `nabla train --model vit --optimizer adamw --lr 1e-3`:
the same Vision Transformer (7x7 patches by a strided convolution, a class
token, learned positions, 4 pre-norm GELU encoder layers of 64 with 4 heads
and a 128 MLP, dropout 0.1, a final LayerNorm, a linear head on the class
token), AdamW (lr 1e-3, PyTorch's defaults otherwise), batch 64, 10 epochs
on the shipped digits, testing after each epoch.

    python3 bench/pytorch_vit.py THREADS [SEED]
"""
import gzip
import struct
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

torch.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 2)
torch.manual_seed(int(sys.argv[2]) if len(sys.argv) > 2 else 1)


def idx(p):
    b = gzip.open(p).read()
    nd = b[3]
    dims = struct.unpack(">" + "I" * nd, b[4:4 + 4 * nd])
    return torch.frombuffer(bytearray(b[4 + 4 * nd:]), dtype=torch.uint8).reshape(dims)


d = "data/mnist/"
norm = lambda x: ((x.float() / 255 - 0.1307) / 0.3081).unsqueeze(1)
tx, ty = norm(idx(d + "train-images-idx3-ubyte.gz")), idx(d + "train-labels-idx1-ubyte.gz").long()
vx, vy = norm(idx(d + "t10k-images-idx3-ubyte.gz")), idx(d + "t10k-labels-idx1-ubyte.gz").long()


class Vit(nn.Module):
    def __init__(self, dim=64):
        super().__init__()
        self.proj = nn.Conv2d(1, dim, 7, stride=7)
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.pos_embed = nn.Parameter(torch.randn(1, 17, dim) * 0.02)
        layer = nn.TransformerEncoderLayer(dim, 4, 128, dropout=0.1, activation="gelu", batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, 4, norm=nn.LayerNorm(dim), enable_nested_tensor=False)
        self.head = nn.Linear(dim, 10)

    def forward(self, x):
        t = self.proj(x).flatten(2).transpose(1, 2)
        t = torch.cat([self.cls_token.expand(len(x), -1, -1), t], 1) + self.pos_embed
        return self.head(self.encoder(t)[:, 0])


m = Vit()
opt = torch.optim.AdamW(m.parameters(), lr=1e-3)
for ep in range(1, 11):
    m.train()
    t = time.time()
    perm = torch.randperm(len(tx))
    for i in range(0, len(tx), 64):
        b = perm[i:i + 64]
        opt.zero_grad()
        F.cross_entropy(m(tx[b]), ty[b]).backward()
        opt.step()
    tt = time.time() - t
    m.eval()
    with torch.no_grad():
        out = m(vx)
        loss = F.cross_entropy(out, vy, reduction="sum").item() / len(vx)
        c = (out.argmax(1) == vy).sum().item()
    print(f"epoch {ep}: test loss {loss:.4f} acc {c}/{len(vx)} ({100 * c / len(vx):.1f}%) train {tt:.2f}s")
