#!/usr/bin/env python3
"""The PyTorch side of examples/pytorch/word_language_model.rs: the models
(RNN_TANH, RNN_RELU, LSTM, GRU with optional tied weights; a Transformer
encoder with sinusoidal positions and a causal mask), data handling (words
and <eos> per line, columns, bptt windows, the state carried and detached)
and training (NLL of log-softmax, plain SGD at lr 20, clipping at 0.25, the
rate divided by 4 when validation stops improving) of PyTorch's
`word_language_model` example, written here for the same data: `--data
DIR` (train/valid/test.txt) or the shipped Devil's Dictionary cut 80/10/10
by lines.

    python3 bench/pytorch_examples/word_language_model.py --threads 2 --epochs 3 [--model Transformer --lr 5]

Prints `epoch E: S s training` per epoch and `test loss: L` at the end."""
import argparse
import copy
import math
import os
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def corpus(data):
    if data:
        parts = [open(os.path.join(data, f), encoding="utf8").read() for f in ("train.txt", "valid.txt", "test.txt")]
    else:
        lines = open(os.path.join(ROOT, "data/text/devils-dictionary.txt"), encoding="utf8").read().splitlines()
        a, b = len(lines) * 8 // 10, len(lines) * 9 // 10
        parts = ["\n".join(lines[:a]), "\n".join(lines[a:b]), "\n".join(lines[b:])]
    index = {}

    def tokenize(text):
        ids = []
        for line in text.splitlines():
            for w in line.split() + ["<eos>"]:
                ids.append(index.setdefault(w, len(index)))
        return torch.tensor(ids)

    return [tokenize(p) for p in parts], len(index)


def batchify(data, bsz):
    n = data.size(0) // bsz
    return data[: n * bsz].view(bsz, -1).t().contiguous()


class RnnModel(nn.Module):
    def __init__(self, kind, ntoken, ninp, nhid, nlayers, dropout, tied):
        super().__init__()
        self.drop = nn.Dropout(dropout)
        self.encoder = nn.Embedding(ntoken, ninp)
        if kind in ("LSTM", "GRU"):
            self.rnn = getattr(nn, kind)(ninp, nhid, nlayers, dropout=dropout)
        else:
            self.rnn = nn.RNN(ninp, nhid, nlayers, nonlinearity=kind[4:].lower(), dropout=dropout)
        self.decoder = nn.Linear(nhid, ntoken)
        if tied:
            self.decoder.weight = self.encoder.weight
        nn.init.uniform_(self.encoder.weight, -0.1, 0.1)
        nn.init.zeros_(self.decoder.bias)
        nn.init.uniform_(self.decoder.weight, -0.1, 0.1)
        self.kind, self.nhid, self.nlayers = kind, nhid, nlayers

    def forward(self, x, hidden):
        out, hidden = self.rnn(self.drop(self.encoder(x)), hidden)
        return F.log_softmax(self.decoder(self.drop(out)).view(-1, self.decoder.out_features), dim=1), hidden

    def init_hidden(self, bsz):
        z = lambda: torch.zeros(self.nlayers, bsz, self.nhid)
        return (z(), z()) if self.kind == "LSTM" else z()


class TransformerModel(nn.Module):
    def __init__(self, ntoken, ninp, nhead, nhid, nlayers, dropout):
        super().__init__()
        layer = nn.TransformerEncoderLayer(ninp, nhead, nhid)  # dropout 0.1, as nn.Transformer's
        self.encoder = nn.TransformerEncoder(layer, nlayers, norm=nn.LayerNorm(ninp), enable_nested_tensor=False)
        self.input_emb = nn.Embedding(ntoken, ninp)
        self.decoder = nn.Linear(ninp, ntoken)
        self.pos_drop = nn.Dropout(dropout)
        pe = torch.zeros(5000, ninp)
        pos = torch.arange(5000, dtype=torch.float).unsqueeze(1)
        div = torch.exp(torch.arange(0, ninp, 2).float() * (-math.log(10000.0) / ninp))
        pe[:, 0::2], pe[:, 1::2] = torch.sin(pos * div), torch.cos(pos * div)
        self.register_buffer("pe", pe.unsqueeze(1))
        nn.init.uniform_(self.input_emb.weight, -0.1, 0.1)
        nn.init.zeros_(self.decoder.bias)
        nn.init.uniform_(self.decoder.weight, -0.1, 0.1)
        self.ninp = ninp

    def forward(self, src, hidden=None):
        t = len(src)
        mask = torch.log(torch.tril(torch.ones(t, t)))
        x = self.pos_drop(self.input_emb(src) * math.sqrt(self.ninp) + self.pe[:t])
        out = self.decoder(self.encoder(x, mask=mask))
        return F.log_softmax(out, dim=-1).view(-1, out.size(-1)), None

    def init_hidden(self, bsz):
        return None


def detach(h):
    if h is None:
        return None
    return h.detach() if isinstance(h, torch.Tensor) else tuple(v.detach() for v in h)


def main():
    ap = argparse.ArgumentParser()
    for flag, kind, default in [("--data", str, None), ("--model", str, "LSTM"), ("--emsize", int, 200),
                                ("--nhid", int, 200), ("--nlayers", int, 2), ("--lr", float, 20.0),
                                ("--clip", float, 0.25), ("--epochs", int, 40), ("--batch_size", int, 20),
                                ("--bptt", int, 35), ("--dropout", float, 0.2), ("--seed", int, 1111),
                                ("--nhead", int, 2), ("--threads", int, 1)]:
        ap.add_argument(flag, type=kind, default=default)
    ap.add_argument("--tied", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    (train, valid, test), ntokens = corpus(a.data)
    train_data, val_data, test_data = batchify(train, a.batch_size), batchify(valid, 10), batchify(test, 10)
    if a.model == "Transformer":
        model = TransformerModel(ntokens, a.emsize, a.nhead, a.nhid, a.nlayers, a.dropout)
    else:
        model = RnnModel(a.model, ntokens, a.emsize, a.nhid, a.nlayers, a.dropout, a.tied)

    def evaluate(source):
        model.eval()
        total, hidden = 0.0, model.init_hidden(10)
        with torch.no_grad():
            for i in range(0, source.size(0) - 1, a.bptt):
                n = min(a.bptt, len(source) - 1 - i)
                out, hidden = model(source[i:i + n], hidden)
                hidden = detach(hidden)
                total += n * F.nll_loss(out, source[i + 1:i + 1 + n].reshape(-1)).item()
        return total / (len(source) - 1)

    lr, best = a.lr, None
    for epoch in range(1, a.epochs + 1):
        model.train()
        hidden, training = model.init_hidden(a.batch_size), 0.0
        for i in range(0, train_data.size(0) - 1, a.bptt):
            tick = time.perf_counter()
            n = min(a.bptt, len(train_data) - 1 - i)
            model.zero_grad()
            out, hidden = model(train_data[i:i + n], detach(hidden))
            loss = F.nll_loss(out, train_data[i + 1:i + 1 + n].reshape(-1))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), a.clip)
            with torch.no_grad():
                for p in model.parameters():
                    p.add_(p.grad, alpha=-lr)
            training += time.perf_counter() - tick
        val = evaluate(val_data)
        print(f"epoch {epoch}: {training:.2f} s training, valid loss {val:.2f}", flush=True)
        if best is None or val < best[0]:
            best = (val, copy.deepcopy(model.state_dict()))
        else:
            lr /= 4.0
    model.load_state_dict(best[1])
    print(f"test loss: {evaluate(test_data):.4f}")


if __name__ == "__main__":
    main()
