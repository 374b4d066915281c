"""Float32 executors of a tail's CNN ops in channels-last memory (see :func:`hwsim.solve.tail.float32_outputs`).

A tail of a convolutional network spends its time in convolutions. Here a convolution (one
group) is one float32 GEMM of channels-last patches, k = (kh, kw, c), by its weights, or, for 3x3
stride-1 convolutions with many channels, Winograd F(2x2, 3x3) (:func:`_winograd`); products run
in the float reference's fixed blocks (:mod:`hwsim.sim.refblas`), so values do not depend on
the thread count or the load. The patches are made block by block inside those blocks' tasks
(:func:`hwsim.sim.refconv.conv2d`): the whole patch matrix (173 MB for a 64-channel 3x3
convolution of ResNet-18's first stage at 24 stacked samples) never exists, and the copying runs
on the pool's threads; the values are those of the whole matrix's blocks, bit for bit. Its output stays channels last in memory: each 4-D value
is an (N, C, H, W) view of an (N, H, W, C) array, which numpy's elementwise ops keep, and the
next convolution reads its patches without a transpose.

A batch norm whose input is a convolution's output read by nothing else is folded into the
convolution: weights ``w * gamma / sqrt(var + eps)`` and bias ``(b - mean) * gamma / sqrt(var +
eps) + beta``, computed in float64 and rounded to float32 once. Against the simulator's batch
norm after the convolution (float64, the output rounded to float32) this moves a value by float32
rounding, as the float32 GEMM itself does. ReLU and add write into an input that nothing else
reads. Max pooling takes a running maximum over the taps, as the simulator's executor does, in one
pass (:func:`hwsim.kernel_api.max_pool2d`).

Ops these executors do not take (grouped convolutions, other kinds) return None and run in the
simulator's executors.

With ``products="float64"`` (the float64 re-run of choices that barely move the outputs) the
same convolutions (patches block by block, 1x1 products, Winograd) run in float64 arithmetic on
the float32 values and each output is rounded to float32 once, as the simulator's float
convolution (float64 products and bias, the output rounded to float32) does: the two differ by
the float64 rounding of another summation order (about 1e-16 relative, against the float32
rounding's 6e-8, so a float32 output differs only where the float64 value falls that close to a
float32 rounding boundary). Float64 Winograd's own error is of the same order. Nothing is folded
(the simulator rounds a convolution's output before its batch norm) and only the exact ops
besides convolutions (ReLU, max pooling) run here; batch norms and adds run in the simulator's
executors.
"""

from __future__ import annotations

import threading

import numpy as np

from hwsim.graph.ir import Graph
from hwsim.sim import refblas, refconv

#: prepared (folded, channels-last) weights by the identity of the arrays they come from; the
#: entry holds those arrays, so an identity is never reused while its entry lives
_PREPARED: dict[tuple, tuple] = {}
_PREPARED_MAX = 512
_PREPARED_LOCK = threading.Lock()


class ChannelsLast:
    """Float32 CNN executors over one tail graph (see module docstring).

    ``run(op, xs)`` returns the op's output or None (not taken here). ``folded(op)``: the batch
    norm is folded into the convolution before it, whose output the batch norm's output is.
    """

    def __init__(self, graph: Graph, products: str = "float32"):
        self.g, self.wide = graph, products == "float64"
        readers: dict[str, int] = {}
        for op in graph.ops():
            for t in op.inputs:
                readers[t] = readers.get(t, 0) + 1
        self.readers = readers
        outputs = set(graph.outputs)
        self.bn_of: dict[str, object] = {}  # conv name -> the batch norm folded into it
        self._folded: set[str] = set()
        for op in graph.ops():
            if self.wide or op.op != "batchnorm" or not all(graph.tensors[t].data is not None for t in op.inputs[1:]):
                continue
            src = graph.producer(op.inputs[0])
            conv = graph.op(src) if src is not None and src in graph.nx else None
            if conv is not None and self._conv_taken(conv) and readers.get(op.inputs[0]) == 1 \
                    and op.inputs[0] not in outputs:
                self.bn_of[conv.name] = op
                self._folded.add(op.name)
        self.owned: set[str] = set()  # tensors whose arrays were made here and are read once, by one op
        self._outputs = outputs

    def _conv_taken(self, op) -> bool:
        w = self.g.tensors[op.inputs[1]]
        return op.op == "conv2d" and op.groups == 1 and w.data is not None and len(w.shape) == 4 and (
            len(op.inputs) < 3 or self.g.tensors[op.inputs[2]].data is not None)

    def folded(self, op) -> bool:
        return op.name in self._folded

    def _mine(self, name: str) -> bool:
        """Whether ``name``'s array may be overwritten: made here and read only by the op now running."""
        return name in self.owned and self.readers.get(name) == 1 and name not in self._outputs

    def run(self, op, value) -> np.ndarray | None:
        """``op``'s output, its inputs read with ``value(name)``; None when not taken here."""
        if op.op == "conv2d" and self._conv_taken(op):
            y = _conv(op, value(op.inputs[0]), self.g.tensors[op.inputs[1]].shape[2:], self._weights(op))
        elif self.wide and not (op.op == "unary" and op.fn == "relu" or op.op == "pool" and op.kind == "max"):
            return None  # not exact in float32 arithmetic: the simulator's executor (float64)
        elif op.op in ("unary", "binary", "pool"):
            xs = [value(t) for t in op.inputs]
            if not all(x.dtype == np.float32 for x in xs):
                return None
            if op.op == "unary" and op.fn == "relu":
                y = np.maximum(xs[0], np.float32(0), out=xs[0] if self._mine(op.inputs[0]) else None)
            elif op.op == "binary" and op.fn == "add":
                y = _add(xs, [self._mine(t) for t in op.inputs])
            elif op.op == "pool" and op.kind == "max" and xs[0].ndim == 4:
                y = _max_pool(op, xs[0], self.g.tensors[op.outputs[0]].shape)
            else:
                return None
        elif op.op == "batchnorm" and self._constant(op.inputs[1:]):
            x = value(op.inputs[0])
            if x.dtype != np.float32 or x.ndim != 4:
                return None
            y = _affine(x, *self._prepared(op, _batchnorm_affine))
        else:
            return None
        self.owned.add(op.outputs[0])
        return y

    def fold_output(self, op) -> None:
        """The folded batch norm ``op``'s output is its input's array (see :meth:`folded`)."""
        if op.inputs[0] in self.owned:
            self.owned.add(op.outputs[0])

    def _constant(self, names) -> bool:
        return all(self.g.tensors[t].data is not None for t in names)

    def _weights(self, op) -> tuple:
        """(weights (KH*KW*C, O) or None, bias (O,) or None, Winograd weights (16, C, O) or None:
        one of the two weights, the one :func:`_conv` reads), float32 or float64 (``products``),
        the batch norm folded in (:func:`_conv_weights`)."""
        return self._prepared(op, _conv_weights_f64 if self.wide else _conv_weights, self.bn_of.get(op.name))

    def _prepared(self, op, make, bn=None) -> tuple:
        """``make(op, graph, bn)`` for ``op``'s constants (and those of the batch norm ``bn``),
        remembered by the identity of their arrays."""
        arrays = [self.g.tensors[t].data for t in op.inputs[1:]]
        if bn is not None:
            arrays += [self.g.tensors[t].data for t in bn.inputs[1:]]
        key = (op.name, make.__name__, bn.eps if bn is not None else None) + tuple(id(a) for a in arrays)
        with _PREPARED_LOCK:
            hit = _PREPARED.get(key)
        if hit is not None and all(a is b for a, b in zip(hit[0], arrays)):
            return hit[1]
        prepared = make(op, self.g, bn)
        with _PREPARED_LOCK:
            if len(_PREPARED) >= _PREPARED_MAX:
                _PREPARED.pop(next(iter(_PREPARED)))
            _PREPARED[key] = (arrays, prepared)
        return prepared


def _bn_constants(g: Graph, bn) -> tuple:
    """(gamma / sqrt(var + eps), beta, mean) of batch norm ``bn``, float64 from its
    constants rounded to float32 (the simulator's batch norm reads them as float32 feeds)."""
    from hwsim.sim.qspec import const_real

    gamma, beta, mean, var = (np.asarray(const_real(g.tensors[t]), np.float32).astype(np.float64)
                              for t in bn.inputs[1:])
    return gamma / np.sqrt(var + bn.eps), beta, mean


def _batchnorm_affine(op, g: Graph, _) -> tuple:
    """(scale, shift) float32 of a batch norm alone: x * scale + shift, both computed in float64."""
    inv, beta, mean = _bn_constants(g, op)
    return np.asarray(inv, np.float32), np.asarray(beta - mean * inv, np.float32)


def _affine(x: np.ndarray, scale: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """``x * scale + shift`` per channel of float32 ``x`` (N, C, H, W), any memory layout: (N, C,
    H, W) view of a channels-last array (the next convolution reads it without a copy)."""
    n, c, h, w = x.shape
    y = np.multiply(x.transpose(0, 2, 3, 1), scale, out=np.empty((n, h, w, c), np.float32))
    return np.add(y, shift, out=y).transpose(0, 3, 1, 2)


def _conv_weights(op, g: Graph, bn, dtype=np.float32) -> tuple:
    """Weights of a convolution for :func:`_conv` (see :meth:`ChannelsLast._weights`), in ``dtype``
    (float64: the float32 constants widened, as the simulator reads them; no batch norm)."""
    from hwsim.sim.qspec import const_real

    w = const_real(g.tensors[op.inputs[1]])
    b = const_real(g.tensors[op.inputs[2]]) if len(op.inputs) > 2 else None
    wino = _winograd(op, w.shape)
    if dtype == np.float64:
        w = np.asarray(w, np.float32).astype(np.float64)
        wk = None if wino else np.ascontiguousarray(w.transpose(2, 3, 1, 0).reshape(-1, w.shape[0]))
        return (wk, None if b is None else np.asarray(b, np.float32).astype(np.float64),
                _winograd_weights(w, np.float64) if wino else None)
    if bn is not None:
        inv, beta, mean = _bn_constants(g, bn)
        w = np.asarray(w, np.float32).astype(np.float64) * inv.reshape(-1, 1, 1, 1)
        b0 = np.zeros_like(mean) if b is None else np.asarray(b, np.float32).astype(np.float64)
        b = (b0 - mean) * inv + beta
    wk = None if wino else np.ascontiguousarray(np.asarray(w, np.float32).transpose(2, 3, 1, 0).reshape(-1, w.shape[0]))
    return (wk, None if b is None else np.asarray(b, np.float32),
            _winograd_weights(np.asarray(w, np.float64)) if wino else None)


def _conv_weights_f64(op, g: Graph, bn) -> tuple:
    """:func:`_conv_weights` in float64 (the float64 re-run; ``bn`` is None there)."""
    return _conv_weights(op, g, bn, np.float64)


def _conv(op, x: np.ndarray, kernel: tuple, prepared) -> np.ndarray:
    """One-group convolution of float32 ``x`` (N, C, H, W), any memory layout, by the ``kernel``
    (KH, KW) weights ``prepared`` in their float type (float32, or float64: the output rounded to
    float32 once, see the module docstring): float32 (N, O, OH, OW) view of a channels-last array."""
    wk, bias, wino = prepared
    n, c = x.shape[:2]
    kh, kw = kernel
    x = np.asarray(x, np.float32)
    if wino is not None:
        y = _winograd_conv(x, wino, bias, op.padding)
    elif (kh, kw) == (1, 1) and not any(op.padding):
        xh = x.transpose(0, 2, 3, 1)[:, ::op.stride[0], ::op.stride[1]]
        oh, ow = xh.shape[1:3]
        y = refblas.dot(np.ascontiguousarray(xh, wk.dtype).reshape(-1, c), wk).reshape(n, oh, ow, -1)
    else:  # patches block by block; wk (KH*KW*C, O) seen as the (O, C, KH, KW) weights refconv reads
        y = refconv.conv2d(x, wk.reshape(kh, kw, c, -1).transpose(3, 2, 0, 1), op).transpose(0, 2, 3, 1)
    if bias is not None and wino is None:
        y += bias
    return y.astype(np.float32, copy=False).transpose(0, 3, 1, 2)


#: Winograd F(2x2, 3x3) (Lavin & Gray 2016, "Fast Algorithms for Convolutional Neural Networks",
#: eq. 7-8; :mod:`hwsim.kernels.winograd`): 16 GEMMs of (tiles, C) by (C, O) replace one of
#: (pixels, 9 C) by (9 C, O), 2.25x fewer multiplications
_winograd = refconv.winograd_applies
_winograd_conv = refconv.winograd_conv


def _winograd_weights(w: np.ndarray, dtype=np.float32) -> np.ndarray:
    """G g G^T of float64 weights (O, C, 3, 3), rounded once to ``dtype``, as (16, C, O): the
    reference's transform (:func:`hwsim.sim.refconv.winograd_weights`). It replaced ``np.einsum(
    "ai,ocij,bj->aboc", G, w, G)`` (2026-11-27): 112 ms a 512-channel kernel, 0.8 s of the resnet18
    solve's CPU; with a batch norm folded in the two sum the nine terms in different orders (float64
    results a last bit apart, the float32 values equal in every table measured, RESULTS.md)."""
    return refconv.winograd_weights(w, dtype)


def _add(xs: list, mine: list[bool]) -> np.ndarray:
    """``xs[0] + xs[1]`` (float32), written into an input of the output's shape that may be overwritten."""
    a, b = xs
    shape = np.broadcast_shapes(a.shape, b.shape)
    if mine[0] and a.shape == shape:
        return np.add(a, b, out=a)
    if mine[1] and b.shape == shape:
        return np.add(b, a, out=b)  # float addition commutes exactly
    return np.add(a, b)


def _max_pool(op, x: np.ndarray, out_shape: tuple) -> np.ndarray:
    """Max pooling as the simulator's (NaN padding, running ``np.fmax`` over the taps), in float32
    channels-last memory, in one pass without the padded copy (:func:`hwsim.kernel_api.max_pool2d`)."""
    from hwsim import kernel_api

    return kernel_api.max_pool2d(x, op.kernel, op.stride, op.padding, out_shape[2:])
