#!/usr/bin/env python3
"""The PyTorch side of examples/pytorch/regression.rs: PyTorch's
`regression` example (pytorch/examples, regression/main.py) written here
with a seed: a degree-4 polynomial fitted by one linear layer, smooth-L1
loss, hand-written steps of 0.1, batches of 32 until the loss is < 1e-3.

    python3 bench/pytorch_examples/regression.py --seed 1 --threads 1"""
import argparse
import time
from itertools import count

import torch
import torch.nn.functional as F

POLY_DEGREE = 4


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    start = time.time()
    w_target = torch.randn(POLY_DEGREE, 1) * 5
    b_target = torch.randn(1) * 5

    def make_features(x):
        x = x.unsqueeze(1)
        return torch.cat([x ** i for i in range(1, POLY_DEGREE + 1)], 1)

    def get_batch(batch_size=32):
        x = make_features(torch.randn(batch_size))
        return x, x.mm(w_target) + b_target.item()

    fc = torch.nn.Linear(w_target.size(0), 1)
    for batch_idx in count(1):
        batch_x, batch_y = get_batch()
        fc.zero_grad()
        output = F.smooth_l1_loss(fc(batch_x), batch_y)
        loss = output.item()
        output.backward()
        for param in fc.parameters():
            param.data.add_(-0.1 * param.grad)
        if loss < 1e-3:
            break
    print(f"Loss: {loss:.6f} after {batch_idx} batches in {time.time() - start:.4f} s")


if __name__ == "__main__":
    main()
