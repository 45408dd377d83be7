#!/usr/bin/env python3
"""The classic PyTorch MNIST program (the reference nabla reproduces), with
the network in its working form, for side-by-side timing: torchvision
dataset and DataLoader, SGD lr 0.001 momentum 0.9, batch 64, test batch 100.

    python3 bench/pytorch_reference.py --data ROOT --dataset fashion-mnist --threads 2 --epochs 10

ROOT holds MNIST/raw or FashionMNIST/raw (the *-ubyte.gz files)."""
import argparse
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
from torchvision import datasets, transforms


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5, padding=2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = x.view(-1, 16 * 5 * 5)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data", required=True)
    p.add_argument("--dataset", default="mnist")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    ds, (mean, std) = (datasets.FashionMNIST, (0.2860, 0.3530)) if a.dataset == "fashion-mnist" else (datasets.MNIST, (0.1307, 0.3081))
    tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize((mean,), (std,))])
    train = torch.utils.data.DataLoader(ds(a.data, train=True, download=False, transform=tf), batch_size=64, shuffle=True)
    test = torch.utils.data.DataLoader(ds(a.data, train=False, download=False, transform=tf), batch_size=100)
    model = Net().to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.001, momentum=0.9)
    for epoch in range(1, a.epochs + 1):
        t = time.time()
        model.train()
        for data, target in train:
            data, target = data.to(device), target.to(device)
            opt.zero_grad()
            loss = F.cross_entropy(model(data), target)
            loss.backward()
            opt.step()
        secs = time.time() - t
        model.eval()
        test_loss, correct = 0.0, 0
        with torch.no_grad():
            for data, target in test:
                out = model(data)
                test_loss += F.cross_entropy(out, target, reduction="sum").item()
                correct += (out.argmax(1) == target).sum().item()
        n = len(test.dataset)
        print(f"epoch {epoch}: {secs:.2f} s training; Test set: Average loss: {test_loss / n:.4f}, "
              f"Accuracy: {correct}/{n} ({100 * correct / n:.0f}%)", flush=True)


if __name__ == "__main__":
    main()
