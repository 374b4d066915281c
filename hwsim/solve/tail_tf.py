"""Float32 executors of a tail's transformer ops (see :func:`hwsim.solve.tail.float32_outputs`).

A transformer tail spends its time in linears, attention products, softmax, LayerNorm and GELU.
Here the last three run as the numba kernels of :mod:`hwsim.float32_ops` (the float64 formula
rounded once to float32, within 1 ulp; GELU and softmax with their polynomials in float32
arithmetic, within 6 and 3 ulps, except in the float64 re-run, ``products="float64"``, which
keeps every op within 1 ulp of the simulator's), and every op is split into blocks of rows (of the
stack, for attention products) that the float reference's thread pool takes as threads free up
(:func:`hwsim.sim.refblas.run_tasks`): a block's values do not depend on the split, so they do
not depend on the thread count or the load. Linears are :func:`hwsim.sim.refblas.dot`'s fixed
row blocks, each with its bias added in its task. Attention products are one ``np.matmul`` per block of
the stack's leading axis on one BLAS thread: the same per-matrix products as one task per
matrix, at a fraction of the task overhead (288 matrices of 128 x 32 x 128 per MiniLM-L6 tail
product).
Attention's multiply of the scores by a constant scale is folded into the softmax after it, and
attention's chain ``softmax(q @ k * scale) @ v`` runs in one task per block of the stack (the scores
of a block go through its softmax and its product with ``v`` while they are in cache, and the stack
of scores is never held whole): the same products and softmax rows as op by op, so the same values.

Ops these executors do not take return None and run in the simulator's executors.
"""

from __future__ import annotations

import math

import numpy as np

from hwsim import float32_ops
from hwsim.sim import refblas

#: elements per task of a row-wise op (enough to amortise a task, ~20 tasks per MiniLM-L6 op)
_ELEMENTS_PER_TASK = 1 << 18
#: rows of a linear's block whose epilogue (GELU, or residual add and LayerNorm) runs at once
#: (:func:`_linear`; 64 x 1536 float32 is 384 KiB)
_EPILOGUE_ROWS = 64


class Transformer:
    """Float32 executors over one tail graph (see module docstring); ``products`` as in
    :func:`hwsim.solve.tail.float32_outputs`.

    A multiply by a one-element constant whose output only a softmax reads (attention's
    ``scores * scale``) is folded into the softmax: the multiply passes its input through, and the
    softmax computes ``float32(x * scale)`` for each value first, what the multiply gives.
    """

    def __init__(self, graph, products: str = "float32"):
        from hwsim.sim.boundary import is_integer_type

        self.g, self.dtype = graph, np.dtype(products)
        readers: dict[str, int] = {}
        for op in graph.ops():
            for t in op.inputs:
                readers[t] = readers.get(t, 0) + 1
        self.passed: dict[str, str] = {}  # folded multiply -> the input it passes through
        self.scale_of: dict[str, str] = {}  # softmax -> the constant its input was multiplied by
        self.softmax_of: dict[str, str] = {}  # folded multiply -> its softmax
        readers_of: dict[str, list] = {}
        for op in graph.ops():
            for t in op.inputs:
                readers_of.setdefault(t, []).append(op)
        for op in graph.ops():
            if op.op != "softmax" or not self._last_axis(op):
                continue
            src = graph.producer(op.inputs[0])
            mul = graph.op(src) if src is not None and src in graph.nx else None
            if mul is None or mul.op != "binary" or mul.fn != "mul" or readers.get(mul.outputs[0]) != 1 \
                    or mul.outputs[0] in graph.outputs:
                continue
            for x, c in (mul.inputs, mul.inputs[::-1]):
                t, tc = graph.tensors[x], graph.tensors[c]
                if tc.data is not None and np.size(tc.data) == 1 and not is_integer_type(tc.dtype) \
                        and t.shape == graph.tensors[mul.outputs[0]].shape:
                    self.passed[mul.name], self.scale_of[op.name], self.softmax_of[mul.name] = x, c, op.name
                    break
        self.chain: dict[str, str] = {}  # op of an attention chain -> its part (see _attention_chain)
        for op in graph.ops():
            if op.op == "softmax" and self._last_axis(op):
                self._attention_chain(op, readers_of)
        # ops a linear's row blocks compute after its product (_linear's epilogue; see _epilogues)
        self.epilogue_of: dict[str, tuple] = self._epilogues(readers_of) if self.dtype == np.float32 else {}
        self.carried: dict[str, str] = {}  # op computed by its linear -> the input it passes through

    def _attention_chain(self, softmax, readers_of: dict) -> None:
        """Take ``softmax(q @ k (* scale)) @ v`` as one chain (:func:`_attention`) when the scores
        are a matmul's (times a folded scale), the values on the way have no other reader and are
        no graph output, and q, k and v are float stacks (float32 values, 3 or more axes)."""
        g = self.g
        mul = g.producer(softmax.inputs[0])
        scores = self.passed.get(mul, softmax.inputs[0])  # through the folded multiply
        qk = g.op(g.producer(scores)) if g.producer(scores) in g.nx else None
        av, *more = readers_of.get(softmax.outputs[0], [None, None])
        if qk is None or qk.op != "matmul" or more or av.op != "matmul" or av.inputs[0] != softmax.outputs[0] \
                or len(readers_of[scores]) != 1 or any(t in g.outputs for t in (scores, softmax.outputs[0])):
            return
        from hwsim.sim.boundary import is_integer_type

        operands = [*qk.inputs, av.inputs[1]]
        if all(not is_integer_type(g.tensors[t].dtype) and len(g.tensors[t].shape) >= 3 for t in operands):
            self.chain.update({qk.name: "scores", softmax.name: "softmax", av.name: "product"})

    def _epilogues(self, readers_of: dict) -> dict[str, tuple]:
        """Linear -> the ops after it that its row blocks compute (:func:`_linear`), each reading
        only the one before (no other reader, no graph output): ``("gelu", gelu)``, or
        ``("residual", add, other, layernorm)`` for ``layernorm(linear + other)`` with ``other`` a
        float tensor of the add's shape made before the linear (a post-LN transformer's residual)."""
        g = self.g
        from hwsim.sim.boundary import is_integer_type

        order = {op.name: i for i, op in enumerate(g.ops())}

        def only_reader(t: str):
            rs = readers_of.get(t, [])
            return rs[0] if len(rs) == 1 and t not in g.outputs else None

        out = {}
        for lin in g.ops():
            nxt = only_reader(lin.outputs[0]) if lin.op == "linear" else None
            if nxt is None:
                continue
            if nxt.op == "unary" and nxt.fn == "gelu":
                out[lin.name] = ("gelu", nxt)
            elif nxt.op == "binary" and nxt.fn == "add" and len(nxt.inputs) == 2 and lin.outputs[0] in nxt.inputs:
                other = nxt.inputs[1] if nxt.inputs[0] == lin.outputs[0] else nxt.inputs[0]
                ln = only_reader(nxt.outputs[0])
                made = g.producer(other)
                t = g.tensors[other]
                if ln is not None and ln.op == "layernorm" and not ln.rms and len(ln.inputs) == 3 \
                        and other != lin.outputs[0] and t.shape == g.tensors[nxt.outputs[0]].shape \
                        and not is_integer_type(t.dtype) and (made is None or made not in order
                                                              or order[made] < order[lin.name]):
                    out[lin.name] = ("residual", nxt, other, ln)
        return out

    def _epilogue(self, op, value, arithmetic: str):
        """``(rows, carried)`` for linear ``op``: ``rows(y, z, at)`` computes its epilogue's ops on
        rows ``at`` of the biased product ``y`` into ``z`` (float32 2-D, C-contiguous), and
        ``carried`` maps each op so computed to the input it then passes through; (None, {}) when
        the linear has none or its values are not float32 (the ops then run on their own)."""
        ep = self.epilogue_of.get(op.name)
        if ep is None:
            return None, {}
        if ep[0] == "gelu":
            return (lambda y, z, at: float32_ops.gelu_erf(y, z, arithmetic)), {ep[1].name: ep[1].inputs[0]}
        _, add, other, ln = ep
        r, gamma, beta = value(other), value(ln.inputs[1]), value(ln.inputs[2])
        if any(v.dtype != np.float32 for v in (r, gamma, beta)) or gamma.ndim != 1 or beta.ndim != 1:
            return None, {}
        r2 = np.ascontiguousarray(r).reshape(-1, r.shape[-1])
        eps = ln.eps

        def rows(y, z, at):
            np.add(y, r2[at], out=y)  # float32 addition commutes exactly: either order of the add's inputs
            float32_ops.layernorm(y, gamma, beta, eps, z)

        return rows, {add.name: op.outputs[0], ln.name: add.outputs[0]}

    def _last_axis(self, op) -> bool:
        return op.axis in (-1, len(self.g.tensors[op.inputs[0]].shape) - 1)

    def run(self, op, value) -> np.ndarray | None:
        """``op``'s output, its inputs read with ``value(name)``; None when not taken here."""
        if op.name in self.passed:
            x = value(self.passed[op.name])
            if not isinstance(x, _Scores) and x.dtype != np.float32:  # not folded: the multiply runs,
                self.scale_of.pop(self.softmax_of[op.name])  # its softmax takes no scale
                return None
            return x
        arithmetic = "float32" if self.dtype == np.float32 else "float64"
        part = self.chain.get(op.name)
        if part == "scores":  # computed with the chain's last product
            return _Scores(value(op.inputs[0]), value(op.inputs[1]))
        if part == "softmax":
            x = value(op.inputs[0])
            x.scale = value(self.scale_of[op.name]) if op.name in self.scale_of else None
            return x
        if part == "product":
            x = value(op.inputs[0])
            return _attention(x.q, x.k, x.scale, value(op.inputs[1]), self.dtype, arithmetic)
        if op.name in self.carried:  # its linear's row blocks computed it
            return value(self.carried.pop(op.name))
        if op.op == "unary" and op.fn == "gelu":
            fn = lambda x, out: float32_ops.gelu_erf(x, out, arithmetic)  # noqa: E731
        elif op.op == "softmax" and self._last_axis(op):
            scale = value(self.scale_of[op.name]) if op.name in self.scale_of else None
            fn = lambda x, out: float32_ops.softmax(x, scale, out, arithmetic)  # noqa: E731
        elif op.op == "layernorm" and not op.rms and len(op.inputs) == 3:
            eps = op.eps
            gamma, beta = value(op.inputs[1]), value(op.inputs[2])
            if gamma.dtype != np.float32 or beta.dtype != np.float32 or gamma.ndim != 1:
                return None
            fn = lambda x, out: float32_ops.layernorm(x, gamma, beta, eps, out)  # noqa: E731
        elif op.op == "matmul":
            return _matmul(value(op.inputs[0]), value(op.inputs[1]), self.dtype)
        elif op.op == "linear":
            rows, carried = self._epilogue(op, value, arithmetic)
            y = _linear(op, value, self.dtype, rows)
            if y is not None:
                self.carried.update(carried)
            return y
        else:
            return None
        x = value(op.inputs[0])
        return _rowwise(fn, x) if x.dtype == np.float32 else None


class _Scores:
    """The scores ``q @ k`` of an attention chain, not computed: their softmax (``scale``: the
    multiply folded into it, or None) and product with ``v`` compute them (:func:`_attention`)."""

    def __init__(self, q: np.ndarray, k: np.ndarray):
        self.q, self.k, self.scale = q, k, None


def _attention(q: np.ndarray, k: np.ndarray, scale, v: np.ndarray, dtype: np.dtype, arithmetic: str) -> np.ndarray:
    """``softmax(q @ k * scale) @ v`` (softmax over the last axis; ``scale`` a float32 number or
    None) of float32 stacks, products in ``dtype``, in blocks of the leading axis of the stack:
    each task computes its block's scores, their softmax in place (float32, ``arithmetic`` as
    :func:`hwsim.float32_ops.softmax`) and their product with ``v``. The same products and rows
    as :func:`_matmul`, the softmax by rows and :func:`_matmul` again (the same values: BLAS
    multiplies each matrix of a stack on its own), with the scores of one block alive at a time
    instead of two stacks of them; float32 out."""
    q, k, v = (x.astype(dtype, copy=False) for x in (q, k, v))  # as _matmul casts them
    batch = np.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    q, k = np.broadcast_to(q, batch + q.shape[-2:]), np.broadcast_to(k, batch + k.shape[-2:])
    v = np.broadcast_to(v, batch + v.shape[-2:])
    out = np.empty(batch + (q.shape[-2], v.shape[-1]), dtype)
    axis, step = _stack_blocks(batch, q.shape[-2] * q.shape[-1] * k.shape[-1])

    def task(i: int) -> None:
        at = (slice(None),) * axis + (slice(i, i + step),)
        s = np.matmul(q[at], k[at]).astype(np.float32, copy=False)
        float32_ops.softmax(s, scale, s, arithmetic)
        np.matmul(s.astype(dtype, copy=False), v[at], out=out[at])

    refblas.run_tasks([lambda i=i: task(i) for i in range(0, batch[axis], step)])
    return out.astype(np.float32, copy=False)


def _stack_blocks(batch: tuple, macs: int) -> tuple[int, int]:
    """(axis, step): a stack of products of ``macs`` MACs each, of leading shape ``batch``, split
    along its first axis of more than one (or axis 0) in blocks of ``step``, ~4M MACs each."""
    axis = next((k for k, n in enumerate(batch) if n > 1), 0)
    per = math.prod(batch[axis + 1:]) * macs
    return axis, max(1, (1 << 22) // max(1, per))


def _rowwise(fn, x: np.ndarray) -> np.ndarray:
    """``fn(x, out)`` (a float32 op over the last axis, writing ``out``) in blocks of rows on the pool."""
    x = np.ascontiguousarray(x)
    rows = x.reshape(-1, x.shape[-1]) if x.ndim > 1 else x.reshape(1, -1)
    out = np.empty_like(rows)
    step = max(1, _ELEMENTS_PER_TASK // max(1, rows.shape[1]))
    refblas.run_tasks([lambda i=i: fn(rows[i:i + step], out[i:i + step]) for i in range(0, rows.shape[0], step)])
    return out.reshape(x.shape)


def _matmul(a: np.ndarray, b: np.ndarray, dtype: np.dtype) -> np.ndarray | None:
    """``np.matmul`` of two float32 stacks in ``dtype``, in blocks of the leading axis of the
    (broadcast) stack; float32 out. The operands stay views (attention's heads are transposed
    views of a linear's output: each matrix is strided but BLAS-ready, so np.matmul passes it to
    BLAS as it is); flattening the stack first copied them, 22% of the scores product's time."""
    if a.dtype != np.float32 or b.dtype != np.float32 or a.ndim < 3 or b.ndim < 3:
        return None
    a, b = a.astype(dtype, copy=False), b.astype(dtype, copy=False)
    batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    a, b = np.broadcast_to(a, batch + a.shape[-2:]), np.broadcast_to(b, batch + b.shape[-2:])
    out = np.empty(batch + (a.shape[-2], b.shape[-1]), dtype)
    axis, step = _stack_blocks(batch, a.shape[-2] * a.shape[-1] * b.shape[-1])

    def block(x: np.ndarray, i: int) -> np.ndarray:
        return x[(slice(None),) * axis + (slice(i, i + step),)]

    refblas.run_tasks([lambda i=i: np.matmul(block(a, i), block(b, i), out=block(out, i))
                       for i in range(0, batch[axis], step)])
    return out.astype(np.float32, copy=False)


def _linear(op, value, dtype: np.dtype, rows=None) -> np.ndarray | None:
    """``x @ w.T + b`` of float32 values in ``dtype``: :func:`hwsim.sim.refblas.dot`'s row blocks,
    each block's bias added in its own task while the block is in cache (not in a pass over the
    whole output after); float32 out. ``rows`` (float32 products; :meth:`Transformer._epilogue`):
    the ops after the linear that it computes, ``rows(y, z, at)`` on each block's rows ``at`` in
    sub-blocks of :data:`_EPILOGUE_ROWS` after their bias (the same values as those ops one after
    the other, without their passes over the product from memory); their output is returned."""
    x, w = value(op.inputs[0]), value(op.inputs[1])
    b = value(op.inputs[2]) if len(op.inputs) > 2 else None
    if any(v is not None and v.dtype != np.float32 for v in (x, w, b)) or w.ndim != 2:
        return None
    a = np.ascontiguousarray(x.reshape(-1, x.shape[-1]).astype(dtype, copy=False))
    wt = w.T.astype(dtype, copy=False)
    y = np.empty((a.shape[0], wt.shape[1]), dtype)
    z = np.empty_like(y) if rows is not None else None

    def block(i: int, j: int) -> None:
        np.dot(a[i:j], wt, out=y[i:j])
        if z is None:
            if b is not None:
                y[i:j] += b
            return
        for k in range(i, j, _EPILOGUE_ROWS):  # the bias and the epilogue of a few rows while they are in cache
            at = slice(k, min(k + _EPILOGUE_ROWS, j))
            if b is not None:
                y[at] += b
            rows(y[at], z[at], at)

    refblas.run_tasks([lambda i=i, j=j: block(i, j) for i, j in refblas.row_blocks(*a.shape, wt.shape[1])])
    return (y if z is None else z).reshape(x.shape[:-1] + (w.shape[0],)).astype(np.float32, copy=False)
