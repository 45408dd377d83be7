#!/usr/bin/env python3
"""PyTorch side of `nabla train --model gpt-char`: the same model (nanoGPT's
architecture: learned positions, pre-norm blocks of causal self-attention
with one fused QKV product and a 4x GELU MLP, final LayerNorm, lm_head tied
to the token embeddings; biases on) and the same recipe (90/10 split, random
windows, AdamW betas 0.9/0.99 with weight decay 0.1 on 2-d weights only,
linear warm-up then cosine to lr/10, clipping at 1), in eager mode.

Prints the training seconds, the validation loss on the whole validation
split (non-overlapping windows, as nabla computes it) and the peak resident
memory, one `key value` per line.

    python3 bench/pytorch_gpt.py --threads 2 --seed 1 [--steps 2000]
"""
import argparse
import math
import resource
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, c, heads):
        super().__init__()
        self.heads = heads
        self.ln_1, self.ln_2 = nn.LayerNorm(c), nn.LayerNorm(c)
        self.c_attn, self.attn_proj = nn.Linear(c, 3 * c), nn.Linear(c, c)
        self.c_fc, self.mlp_proj = nn.Linear(c, 4 * c), nn.Linear(4 * c, c)

    def forward(self, x):
        b, t, c = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(c, dim=2)
        split = lambda z: z.view(b, t, self.heads, c // self.heads).transpose(1, 2)
        y = F.scaled_dot_product_attention(split(q), split(k), split(v), is_causal=True)
        x = x + self.attn_proj(y.transpose(1, 2).reshape(b, t, c))
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x))))


class Gpt(nn.Module):
    def __init__(self, vocab, block, layers, heads, c):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(vocab, c), nn.Embedding(block, c)
        self.blocks = nn.ModuleList([Block(c, heads) for _ in range(layers)])
        self.ln_f = nn.LayerNorm(c)
        # nanoGPT's initialization
        for name, p in self.named_parameters():
            if name.endswith("bias"):
                nn.init.zeros_(p)
            elif "ln_" in name:
                nn.init.ones_(p)
            elif name.endswith("proj.weight"):
                nn.init.normal_(p, 0.0, 0.02 / math.sqrt(2 * layers))
            else:
                nn.init.normal_(p, 0.0, 0.02)

    def forward(self, ids):
        x = self.wte(ids) + self.wpe(torch.arange(ids.shape[1]))
        for b in self.blocks:
            x = b(x)
        return self.ln_f(x) @ self.wte.weight.t()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--text", default="data/text/devils-dictionary.txt")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--batch", type=int, default=12)
    ap.add_argument("--context", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--precision", default="f32", choices=["f32", "bf16"])
    a = ap.parse_args()
    # bf16: the forward and the loss inside PyTorch's CPU autocast
    autocast = lambda: torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.precision == "bf16")
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    text = open(a.text, encoding="utf-8").read()
    vocab = sorted(set(text))
    ids = torch.tensor([vocab.index(ch) for ch in text])
    split = len(ids) * 9 // 10
    train, val = ids[:split], ids[split:]
    model = Gpt(len(vocab), a.context, 4, 4, 128)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    rest = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": rest, "weight_decay": 0.0}],
                            lr=a.lr, betas=(0.9, 0.99))

    def lr_at(t):
        lo = a.lr / 10
        if t < a.warmup:
            return a.lr * (t + 1) / (a.warmup + 1)
        ratio = (t - a.warmup) / max(1, a.steps - a.warmup)
        return lo + 0.5 * (1 + math.cos(math.pi * ratio)) * (a.lr - lo)

    t = a.context
    clock = 0.0
    for step in range(a.steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        tick = time.perf_counter()
        starts = torch.randint(len(train) - t - 1, (a.batch,))
        x = torch.stack([train[s:s + t] for s in starts])
        y = torch.stack([train[s + 1:s + t + 1] for s in starts])
        with autocast():
            loss = F.cross_entropy(model(x).view(-1, len(vocab)), y.view(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        clock += time.perf_counter() - tick
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        starts = list(range(0, (len(val) - 1) // t * t, t))
        for i in range(0, len(starts), 64):
            chunk = starts[i:i + 64]
            x = torch.stack([val[s:s + t] for s in chunk])
            y = torch.stack([val[s + 1:s + t + 1] for s in chunk])
            with autocast():
                logits = model(x).float()
            total += F.cross_entropy(logits.view(-1, len(vocab)), y.view(-1), reduction="sum").item()
            count += y.numel()
    print(f"train_seconds {clock:.3f}")
    print(f"val_loss {total / count:.6f}")
    print(f"peak_rss_mb {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.1f}")


if __name__ == "__main__":
    main()
