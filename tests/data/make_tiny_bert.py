"""How tests/data/tiny_bert.onnx was made (needs torch 2.13, not run by the tests):
``python tests/data/make_tiny_bert.py`` writes /tmp/ox/tiny_bert.onnx; 21,283 parameters."""

import torch, torch.nn as nn, math
torch.manual_seed(0)
class Attn(nn.Module):
    def __init__(self, d, h):
        super().__init__(); self.h = h; self.qkv = nn.Linear(d, 3 * d); self.o = nn.Linear(d, d)
    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.qkv(x).split(d, dim=-1)
        q = q.reshape(b, t, self.h, d // self.h).transpose(1, 2)
        k = k.reshape(b, t, self.h, d // self.h).transpose(1, 2)
        v = v.reshape(b, t, self.h, d // self.h).transpose(1, 2)
        s = (q @ k.transpose(-1, -2)) / math.sqrt(d // self.h)
        c = torch.softmax(s, dim=-1) @ v
        return self.o(c.transpose(1, 2).reshape(b, t, d))
class Block(nn.Module):
    def __init__(self, d, h, f):
        super().__init__(); self.a = Attn(d, h); self.n1 = nn.LayerNorm(d); self.f1 = nn.Linear(d, f); self.f2 = nn.Linear(f, d); self.n2 = nn.LayerNorm(d)
    def forward(self, x):
        x = self.n1(x + self.a(x))
        return self.n2(x + self.f2(torch.nn.functional.gelu(self.f1(x))))
class TinyBert(nn.Module):
    def __init__(self, vocab=64, d=32, h=4, f=64, n=2, maxpos=64):
        super().__init__(); self.tok = nn.Embedding(vocab, d); self.pos = nn.Embedding(maxpos, d)
        self.blocks = nn.ModuleList(Block(d, h, f) for _ in range(n)); self.cls = nn.Linear(d, 3)
    def forward(self, ids):
        pos = torch.arange(ids.shape[1]).unsqueeze(0)
        x = self.tok(ids) + self.pos(pos)
        for b in self.blocks: x = b(x)
        return self.cls(x)
m = TinyBert().eval()
print("params", sum(p.numel() for p in m.parameters()))
torch.onnx.export(m, (torch.randint(0, 64, (2, 8)),), "/tmp/ox/tiny_bert.onnx", dynamo=False, opset_version=17,
                  input_names=["input_ids"], output_names=["logits"], dynamic_axes={"input_ids": {0: "batch", 1: "sequence"}, "logits": {0: "batch", 1: "sequence"}})
