"""The float reference's chains of elementwise ops over one input, made in one blocked pass.

A transformer's GELU arrives written out (BERT's QDQ export: ``Mul(x, 0.5)``, ``Mul(x, 1/sqrt 2)``,
``Erf``, ``Add(., 1)``, ``Mul``): five float64 arrays, each made by numpy from whole arrays made
just before; so does a CNN's hard-swish (``Add(x, 3)``, ``Clip(0, 6)``, ``Mul(x, .)``, ``Div(., 6)``:
PP-OCRv4's recogniser, 28 of them on activations up to 8 x 16 x 24 x 160). :func:`plan` finds such
chains in a graph: add / sub / mul / div, erf, relu6 and relu ops of one output shape whose operands are the chain's one input ``x``, earlier ops of the chain or scalar
constants (a dequantized constant too: its op is moved before the chain, :func:`order`).
:func:`run` makes every op's values of a chain at its first op
(:func:`hwsim.kernels.refchain._chain`, block by block), the same values numpy's float64 ops
give, bit for bit, with ``x`` read as it is stored (a product plus its bias is added as it is
read, :class:`~hwsim.sim.refvalues.Biased`). The runner hands each op its values when it
reaches it (:func:`hwsim.sim.runner._execute`). The quantized run does not use this.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hwsim.sim.qspec import Deferred, real_of

#: binary functions of the chain kernel (:mod:`hwsim.kernels.refchain`'s codes)
_CODES = {"add": 0, "sub": 1, "mul": 2, "div": 3}
#: its unary functions (the executor's: :mod:`hwsim.sim.elementwise`)
_UNARY = {"erf": 4, "relu6": 5, "relu": 6}

#: switch (tests turn it off to compare with the op-by-op reference)
enabled = True


@dataclass(frozen=True)
class Chain:
    """Ops (in graph order) over one input tensor ``x`` of the ops' output ``shape``."""

    x: str
    shape: tuple[int, ...]
    ops: tuple  #: the chain's ops


def _size(graph, name: str) -> int:
    return math.prod(graph.tensors[name].shape)


def _kind(op) -> str | None:
    """The chain kernel's name for ``op``, or None when it is no chain op."""
    if op.op == "binary" and op.fn in _CODES and len(op.inputs) == 2 and not getattr(op, "runtime_quant", ()):
        return op.fn
    if op.op == "unary" and op.fn in _UNARY and len(op.inputs) == 1:
        return op.fn
    return None


def plan(graph) -> list[Chain]:
    """The chains of ops in ``graph`` (one op too: over a product read as it is stored, the op
    alone saves a float64 copy of it, :func:`run`): each op's non-scalar operands are the chain's
    input or its earlier ops' outputs, every one of the shape of its output; each scalar operand
    (one value) is a constant or the output of an op reading only constants."""
    tensors, made_by = graph.tensors, None
    chains: list[tuple[str, tuple, list]] = []
    owner: dict[str, int] = {}  # output of a chain op -> its chain
    roots: dict[str, int] = {}  # a chain's input -> the chain (the latest one over it)
    for op in graph.ops():
        kind = _kind(op)
        if kind is None:
            continue
        if made_by is None:
            made_by = {o.outputs[0]: o for o in graph.ops()}
        shape = tuple(tensors[op.outputs[0]].shape)
        big = [t for t in op.inputs if _size(graph, t) != 1]
        small = [t for t in op.inputs if _size(graph, t) == 1]
        if not big or any(tuple(tensors[t].shape) != shape for t in big) or (kind in _UNARY and small) or \
                any(not _constant(tensors, made_by, t) or len(tensors[t].shape) > len(shape) for t in small):
            continue
        ids = {owner[t] if t in owner else roots.get(t) for t in big}
        if len(ids) == 1 and (i := ids.pop()) is not None and chains[i][1] == shape:
            chains[i][2].append(op)
            owner[op.outputs[0]] = i
        elif not any(t in owner for t in big) and len(set(big)) == 1:
            chains.append((big[0], shape, [op]))
            roots[big[0]] = owner[op.outputs[0]] = len(chains) - 1
    return [Chain(x, shape, tuple(c)) for x, shape, c in chains]


def _constant(tensors, made_by, name: str) -> bool:
    """Whether tensor ``name`` is a constant or made by an op reading only constants."""
    if tensors[name].data is not None:
        return True
    op = made_by.get(name)
    return op is not None and bool(op.inputs) and all(tensors[t].data is not None for t in op.inputs)


def order(graph, chains: list[Chain]) -> list:
    """``graph``'s ops in its order, except that each op making a scalar operand of a chain (an op
    reading only constants) runs just before the chain's first op."""
    made_by = {op.outputs[0]: op for op in graph.ops()}
    early: dict[str, list] = {}
    moved = set()
    for c in chains:
        names = [t for op in c.ops for t in op.inputs if t in made_by and _size(graph, t) == 1]
        early[c.ops[0].name] = [made_by[t] for t in dict.fromkeys(names) if made_by[t].name not in moved]
        moved.update(op.name for op in early[c.ops[0].name])
    out = []
    for op in graph.ops():
        if op.name in moved:
            continue
        out.extend(early.get(op.name, ()))
        out.append(op)
    return out


def run(chain: Chain, values: dict) -> dict[str, np.ndarray] | None:
    """Output name -> float64 values of every op of ``chain``, its operands read from ``values``;
    None where they are not of the kinds the kernel reads (the ops then run one by one)."""
    x = values.get(chain.x)
    src = _source(x, chain.shape)
    if src is None or len(chain.ops) < 2 and isinstance(x, np.ndarray):  # one op on an array: numpy's pass
        return None
    y, bias, with_bias, last = src
    slots = {chain.x: 0}
    consts: list[float] = []
    prog = np.zeros((len(chain.ops), 4), np.int64)
    for i, op in enumerate(chain.ops):
        refs = []
        for t in op.inputs:
            if t in slots:
                refs.append(slots[t])
                continue
            v = real_of(values.get(t)) if isinstance(values.get(t), Deferred) else values.get(t)
            if not isinstance(v, np.ndarray) or v.dtype != np.float64 or v.size != 1:
                return None
            consts.append(float(v.reshape(-1)[0]))
            refs.append(-len(consts))
        kind = _kind(op)
        prog[i, :3] = (_UNARY[kind], refs[0], 0) if kind in _UNARY else (_CODES[kind], refs[0], refs[1])
        slots[op.outputs[0]] = i + 1
    from hwsim.float32_ops import erfc_coefficients
    from hwsim.kernels.refchain import _chain

    outs = np.empty((len(chain.ops), y.size))
    _chain(y, bias, with_bias, prog, np.array(consts + [0.0]), outs, erfc_coefficients())
    if last:  # channels last: (N, H, W, C) memory seen as (N, C, H, W), as the input is
        n, c, h, w = chain.shape
        return {op.outputs[0]: outs[i].reshape(n, h, w, c).transpose(0, 3, 1, 2) for i, op in enumerate(chain.ops)}
    return {op.outputs[0]: outs[i].reshape(chain.shape) for i, op in enumerate(chain.ops)}


def _source(x, shape: tuple) -> tuple[np.ndarray, np.ndarray, bool, bool] | None:
    """(y rows (R, C), bias (C,), with_bias, channels_last) that the chain kernel reads as ``x``:
    a :class:`~hwsim.sim.refvalues.Biased` along its last axis (C order of ``shape``) or along the
    channel axis of a 4-D value held channels last (a conv's output: (N, H, W, C) memory,
    ``channels_last``), a float32 :class:`~hwsim.sim.refvalues.Product` or a float64 array,
    C-contiguous; else None."""
    from hwsim.sim.refvalues import Biased, Product

    last = False
    if isinstance(x, Biased):
        y = x.y
        if y.dtype not in (np.float32, np.float64) or x.bias.size != y.shape[x.axis]:
            return None
        if x.axis == 1 and y.ndim == 4 and y.transpose(0, 2, 3, 1).flags.c_contiguous:
            y, last = y.transpose(0, 2, 3, 1), True
        elif x.axis != y.ndim - 1 or not y.flags.c_contiguous:
            return None
        bias, with_bias = x.bias, True
    elif isinstance(x, Product) or isinstance(x, np.ndarray) and x.dtype == np.float64:
        y = x.y if isinstance(x, Product) else x
        if not y.flags.c_contiguous or y.dtype not in (np.float32, np.float64):
            return None
        bias, with_bias = np.zeros(1), False
    else:
        return None
    if tuple(y.transpose(0, 3, 1, 2).shape if last else y.shape) != shape or not y.size:
        return None
    c = y.shape[-1] if with_bias else y.size
    return y.reshape(-1, c), np.ascontiguousarray(bias, np.float64), with_bias, last
