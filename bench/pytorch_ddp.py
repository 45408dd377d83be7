#!/usr/bin/env python3
"""PyTorch side of bench/distributed.py: one epoch of data-parallel training
with DistributedDataParallel over gloo, WORLD processes of one thread each
on this machine, each on its shard of Fashion-MNIST (the data already in
tensors, as bench/pytorch_models.py), per-rank batch B. Prints one JSON line
(rank 0's epoch seconds, the accuracy after the epoch).

    python3 bench/pytorch_ddp.py --model lenet|lstm-rows --world 2 --batch-size 32
"""
import argparse
import json
import os
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel as DDP

from pytorch_models import DEBIAN, LeNet, LstmRows, load


def worker(rank, a, port, out):
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=a.world)
    torch.manual_seed(a.seed)
    tx, ty = load(a.data, "train")
    vx, vy = load(a.data, "t10k")
    model = DDP({"lenet": LeNet, "lstm-rows": LstmRows}[a.model]())
    opt = torch.optim.SGD(model.parameters(), lr=a.lr, momentum=0.9)
    # DistributedSampler's shards: one shuffled order, every WORLD-th example
    g = torch.Generator().manual_seed(a.seed)
    order = torch.randperm(len(tx), generator=g)
    total = (len(order) + a.world - 1) // a.world * a.world
    order = torch.cat([order, order[: total - len(order)]])[rank::a.world]
    dist.barrier()
    t = time.perf_counter()
    model.train()
    for i in range(0, len(order), a.batch_size):
        b = order[i : i + a.batch_size]
        opt.zero_grad()
        F.cross_entropy(model(tx[b]), ty[b]).backward()
        opt.step()
    dist.barrier()
    seconds = time.perf_counter() - t
    if rank == 0:
        model.eval()
        with torch.no_grad():
            correct = sum(
                (model(vx[i : i + 1000]).argmax(1) == vy[i : i + 1000]).sum().item()
                for i in range(0, len(vx), 1000)
            )
        out.put({"train_seconds": seconds, "accuracy": correct / len(vx)})
    dist.destroy_process_group()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", default="lenet", choices=["lenet", "lstm-rows"])
    p.add_argument("--world", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--port", type=int, default=29517)
    p.add_argument("--data", default=DEBIAN)
    a = p.parse_args()
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=worker, args=(r, a, a.port, out)) for r in range(a.world)]
    for pr in procs:
        pr.start()
    result = out.get()
    for pr in procs:
        pr.join()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
