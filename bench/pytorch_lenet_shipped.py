#!/usr/bin/env python3
"""PyTorch side of the LeNet example: the same CNN, SGD (lr 0.001, momentum
0.9), batch 64, 10 epochs on the shipped digits, data already in tensors.
Usage (from the repo root): python3 bench/pytorch_lenet_shipped.py THREADS"""
import gzip, struct, time, sys, torch, torch.nn as nn, torch.nn.functional as F
torch.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 2)
torch.manual_seed(1)
def idx(p):
    b = gzip.open(p).read(); nd = b[3]; dims = struct.unpack('>' + 'I'*nd, b[4:4+4*nd])
    return torch.frombuffer(bytearray(b[4+4*nd:]), dtype=torch.uint8).reshape(dims)
d = 'data/mnist/'
tx = ((idx(d+'train-images-idx3-ubyte.gz').float()/255 - 0.1307)/0.3081).unsqueeze(1); ty = idx(d+'train-labels-idx1-ubyte.gz').long()
vx = ((idx(d+'t10k-images-idx3-ubyte.gz').float()/255 - 0.1307)/0.3081).unsqueeze(1); vy = idx(d+'t10k-labels-idx1-ubyte.gz').long()
class Net(nn.Module):
    def __init__(s):
        super().__init__(); s.conv1=nn.Conv2d(1,6,5,padding=2); s.conv2=nn.Conv2d(6,16,5); s.fc1=nn.Linear(400,120); s.fc2=nn.Linear(120,84); s.fc3=nn.Linear(84,10)
    def forward(s,x):
        x=F.max_pool2d(F.relu(s.conv1(x)),2); x=F.max_pool2d(F.relu(s.conv2(x)),2); x=x.view(-1,400)
        return s.fc3(F.relu(s.fc2(F.relu(s.fc1(x)))))
m=Net(); opt=torch.optim.SGD(m.parameters(), lr=0.001, momentum=0.9)
for ep in range(1, 11):
    t=time.time(); perm=torch.randperm(len(tx))
    for i in range(0, len(tx), 64):
        b=perm[i:i+64]; opt.zero_grad(); loss=F.cross_entropy(m(tx[b]), ty[b]); loss.backward(); opt.step()
    tt=time.time()-t
    with torch.no_grad():
        out=m(vx); l=F.cross_entropy(out, vy, reduction='sum').item()/len(vx); c=(out.argmax(1)==vy).sum().item()
    print(f"epoch {ep}: test loss {l:.4f} acc {c}/{len(vx)} ({100*c/len(vx):.1f}%) train {tt:.2f}s")
