#!/usr/bin/env python3
"""The PyTorch side of examples/pytorch/time_sequence_prediction.rs:
PyTorch's `time_sequence_prediction` example (pytorch/examples,
generate_sine_wave.py and train.py) written here without files or
plotting: the same waves (numpy seed 2), two LSTM cells and a linear
layer, L-BFGS (lr 0.8) on the MSE, in float64 as the original (or float32
with --float32).

    python3 bench/pytorch_examples/time_sequence_prediction.py --steps 3 --threads 2

Prints per step `test loss: L` and `step S: T s training`."""
import argparse
import time

import numpy as np
import torch
import torch.nn as nn


class Sequence(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm1 = nn.LSTMCell(1, 51)
        self.lstm2 = nn.LSTMCell(51, 51)
        self.linear = nn.Linear(51, 1)

    def forward(self, input, future=0):
        outputs = []
        zeros = lambda: torch.zeros(input.size(0), 51, dtype=input.dtype)
        h_t, c_t, h_t2, c_t2 = zeros(), zeros(), zeros(), zeros()
        for input_t in input.split(1, dim=1):
            h_t, c_t = self.lstm1(input_t, (h_t, c_t))
            h_t2, c_t2 = self.lstm2(h_t, (h_t2, c_t2))
            output = self.linear(h_t2)
            outputs += [output]
        for _ in range(future):
            h_t, c_t = self.lstm1(output, (h_t, c_t))
            h_t2, c_t2 = self.lstm2(h_t, (h_t2, c_t2))
            output = self.linear(h_t2)
            outputs += [output]
        return torch.cat(outputs, dim=1)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=15)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--float32", action="store_true")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    np.random.seed(2)
    T, L, N = 20, 1000, 100
    x = np.empty((N, L), "int64")
    x[:] = np.array(range(L)) + np.random.randint(-4 * T, 4 * T, N).reshape(N, 1)
    data = np.sin(x / 1.0 / T).astype("float64")
    np.random.seed(0)
    torch.manual_seed(0)
    dtype = torch.float32 if a.float32 else torch.float64
    input = torch.from_numpy(data[3:, :-1]).to(dtype)
    target = torch.from_numpy(data[3:, 1:]).to(dtype)
    test_input = torch.from_numpy(data[:3, :-1]).to(dtype)
    test_target = torch.from_numpy(data[:3, 1:]).to(dtype)
    seq = Sequence().to(dtype)
    criterion = nn.MSELoss()
    optimizer = torch.optim.LBFGS(seq.parameters(), lr=0.8)
    for i in range(a.steps):
        start = time.time()

        def closure():
            optimizer.zero_grad()
            loss = criterion(seq(input), target)
            loss.backward()
            return loss
        optimizer.step(closure)
        seconds = time.time() - start
        with torch.no_grad():
            pred = seq(test_input, future=1000)
            loss = criterion(pred[:, :-1000], test_target)
        print(f"test loss: {loss.item()}")
        print(f"step {i}: {seconds:.2f} s training", flush=True)


if __name__ == "__main__":
    main()
