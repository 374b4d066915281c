"""A small fluent helper for building IR graphs in code (used by the zoo and by tests).

Each method adds one op (and its parameter tensors) and returns the output tensor name. Op names
follow the torchvision / Hugging Face module names so quant-config globs such as ``layer1.*``
read naturally.
"""

from __future__ import annotations

from hwsim.graph import ops as O
from hwsim.graph.ir import Graph, Tensor


def _pair(v) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else tuple(v)  # type: ignore[return-value]


class Builder:
    """Append ops to a new :class:`Graph`."""

    def __init__(self, name: str):
        self.g = Graph(name)

    # -------------------------------------------------------------- tensors
    def input(self, name: str, shape, dtype: str = "float32") -> str:
        self.g.add_tensor(Tensor(name, tuple(shape), "input", dtype=dtype))
        return name

    def param(self, name: str, shape, role: str = "weight") -> str:
        self.g.add_tensor(Tensor(name, tuple(shape), role))  # type: ignore[arg-type]
        return name

    def output(self, *names: str) -> None:
        self.g.outputs.extend(names)

    def _add(self, op: O.OpBase) -> str:
        self.g.add_op(op)
        return op.outputs[0]

    # -------------------------------------------------------------- compute
    def conv(self, x: str, out_ch: int, k, name: str, stride=1, pad=None, groups: int = 1,
             bias: bool = False, dilation=1) -> str:
        c = self.g.tensors[x].shape[1]
        kh, kw = _pair(k)
        dh, dw = _pair(dilation)
        ph, pw = ((dh * (kh - 1)) // 2, (dw * (kw - 1)) // 2) if pad is None else _pair(pad)
        ins = [x, self.param(f"{name}.weight", (out_ch, c // groups, kh, kw))]
        if bias:
            ins.append(self.param(f"{name}.bias", (out_ch,), "bias"))
        return self._add(O.Conv2d(name=name, inputs=tuple(ins), outputs=(f"{name}.out",),
                                  stride=_pair(stride), padding=(ph, pw, ph, pw),
                                  dilation=(dh, dw), groups=groups))

    def linear(self, x: str, out_features: int, name: str, bias: bool = True, weight: str | None = None) -> str:
        d = self.g.tensors[x].shape[-1]
        w = weight or self.param(f"{name}.weight", (out_features, d))
        ins = [x, w] + ([self.param(f"{name}.bias", (out_features,), "bias")] if bias else [])
        return self._add(O.Linear(name=name, inputs=tuple(ins), outputs=(f"{name}.out",)))

    def matmul(self, a: str, b: str, name: str) -> str:
        return self._add(O.MatMul(name=name, inputs=(a, b), outputs=(f"{name}.out",)))

    # -------------------------------------------------------------- elementwise and norms
    def bn(self, x: str, name: str) -> str:
        c = self.g.tensors[x].shape[1]
        ins = (x, self.param(f"{name}.weight", (c,)), self.param(f"{name}.bias", (c,), "bias"),
               self.param(f"{name}.running_mean", (c,), "buffer"),
               self.param(f"{name}.running_var", (c,), "buffer"))
        return self._add(O.BatchNorm(name=name, inputs=ins, outputs=(f"{name}.out",)))

    def act(self, x: str, fn: str, name: str) -> str:
        return self._add(O.Unary(name=name, fn=fn, inputs=(x,), outputs=(f"{name}.out",)))

    def binary(self, a: str, b: str, fn: str, name: str) -> str:
        return self._add(O.Binary(name=name, fn=fn, inputs=(a, b), outputs=(f"{name}.out",)))

    def layernorm(self, x: str, name: str, rms: bool = False, eps: float = 1e-5) -> str:
        d = self.g.tensors[x].shape[-1]
        ins = [x, self.param(f"{name}.weight", (d,))]
        if not rms:
            ins.append(self.param(f"{name}.bias", (d,), "bias"))
        return self._add(O.LayerNorm(name=name, inputs=tuple(ins), outputs=(f"{name}.out",), rms=rms, eps=eps))

    def softmax(self, x: str, name: str, axis: int = -1) -> str:
        return self._add(O.Softmax(name=name, axis=axis, inputs=(x,), outputs=(f"{name}.out",)))

    def rotary(self, x: str, name: str, offset: int = 0) -> str:
        return self._add(O.Rotary(name=name, offset=offset, inputs=(x,), outputs=(f"{name}.out",)))

    # -------------------------------------------------------------- pooling and movement
    def pool(self, x: str, kind: str, k, stride, name: str, pad=0) -> str:
        ph, pw = _pair(pad)
        return self._add(O.Pool(name=name, kind=kind, kernel=_pair(k), stride=_pair(stride),
                                padding=(ph, pw, ph, pw), inputs=(x,), outputs=(f"{name}.out",)))

    def gap(self, x: str, name: str) -> str:
        return self._add(O.GlobalAvgPool(name=name, inputs=(x,), outputs=(f"{name}.out",)))

    def flatten(self, x: str, name: str, axis: int = 1) -> str:
        return self._add(O.Flatten(name=name, axis=axis, inputs=(x,), outputs=(f"{name}.out",)))

    def reshape(self, x: str, shape, name: str) -> str:
        return self._add(O.Reshape(name=name, shape=tuple(shape), inputs=(x,), outputs=(f"{name}.out",)))

    def transpose(self, x: str, perm, name: str) -> str:
        return self._add(O.Transpose(name=name, perm=tuple(perm), inputs=(x,), outputs=(f"{name}.out",)))

    def concat(self, xs: list[str], axis: int, name: str) -> str:
        return self._add(O.Concat(name=name, axis=axis, inputs=tuple(xs), outputs=(f"{name}.out",)))

    def slice(self, x: str, axis: int, start: int, end: int, name: str) -> str:
        return self._add(O.Slice(name=name, starts=(start,), ends=(end,), axes=(axis,), steps=(1,),
                                 inputs=(x,), outputs=(f"{name}.out",)))

    def embedding(self, ids: str, vocab: int, dim: int, name: str) -> str:
        table = self.param(f"{name}.weight", (vocab, dim))
        return self._add(O.Embedding(name=name, inputs=(ids, table), outputs=(f"{name}.out",)))

    def kv_cache(self, new: str, name: str, context: int) -> str:
        """Read a cache of ``context`` tokens and append ``new``; returns the full keys/values."""
        b, h, _, d = self.g.tensors[new].shape
        cache = f"{name}.cache"
        self.g.add_tensor(Tensor(cache, (b, h, context, d), "kv_cache"))
        old = self._add(O.KVCacheRead(name=f"{name}.read", inputs=(cache,), outputs=(f"{name}.read.out",)))
        return self._add(O.KVCacheAppend(name=f"{name}.append", inputs=(old, new), outputs=(f"{name}.out",)))
