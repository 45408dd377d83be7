#!/usr/bin/env python3
"""The PyTorch side of examples/pytorch/mnist_rnn.rs: the network,
optimizer, schedule and settings of PyTorch's `mnist_rnn` example
(pytorch/examples, mnist_rnn/main.py), written here for the shipped digits
in data/mnist, with the data already in tensors.

    python3 bench/pytorch_examples/mnist_rnn.py --threads 2 --epochs 3

Prints one line per epoch: `epoch E: test loss L accuracy C/N train S s`."""
import warnings

import torch.nn as nn
import torch.nn.functional as F

from mnist import main


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


if __name__ == "__main__":
    warnings.filterwarnings("ignore", message="dropout2d")  # the original's 2-d input
    main(Net, lr=0.1)
