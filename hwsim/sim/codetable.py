"""Elementwise ops on 8-bit codes by a table of every code.

In the quantized run an elementwise op (unary, or binary) whose varying inputs hold 8-bit
per-tensor codes (:class:`~hwsim.sim.qspec.Coded`) and whose output takes 8-bit per-tensor
codes maps each combination of input codes to one output code. Its executor run on every code
(256 values for one coded input and one-element others, 256 x 256 pairs for two coded inputs of
the output's shape) gives a table, and the output is the table indexed by the codes: a
BERT-base GELU's Erf (393,216 elements) evaluates scipy's erf 256 times instead.

The table holds the executor's own outputs rounded as the runner rounds them
(:func:`hwsim.sim.qspec.quantize_coded`), so each output code is the one the direct run gives,
element for element: the executors used here (:mod:`hwsim.sim.elementwise` unary and binary)
compute each output element from that element's inputs alone, by the same arithmetic on a grid
of codes as on the tensor (their path depends on input shapes only through "equal shapes or one
element", which the grids keep). Where a table entry cannot be rounded (NaN), or the output has
fewer than twice the table's entries, :func:`lookup` declines and the executor runs directly.

:func:`lookup16` does the same for a unary op from int16 or 8-bit per-tensor codes to an int16
per-tensor output (65,536 or 256 entries, the output's real values as the runner rounds them):
solve's candidate plans with int16 activations run MiniLM-L6's GELU on 1.5M elements per layer,
from int16 codes, or from 8-bit ones where the plan keeps the linear layer before it at 8 bits
(0.12-0.2 s of a plan's 1.2 s by scipy's erf per element before, 2026-11-27).
"""

from __future__ import annotations

import math

import numpy as np

from hwsim.sim import qspec

#: codes of an 8-bit input
_CODES = 256


def _codes8(spec) -> bool:
    """True for a per-tensor spec with a scale whose codes are uint8 / int8."""
    return spec.granularity == "tensor" and spec.scale is not None and qspec.code_dtype(spec) is not None


def _grids(xs: list, coded: list[int]) -> list:
    """``xs`` with each coded input replaced by a Coded over every code (one input: 256 codes;
    two: 65,536 pairs, the first input's code the major index), in the input's own code type."""
    grid = np.arange(_CODES, dtype=np.uint8)
    flats = [grid] if len(coded) == 1 else [np.repeat(grid, _CODES), np.tile(grid, _CODES)]
    out = list(xs)
    for i, flat in zip(coded, flats):
        out[i] = qspec.Coded(flat.view(xs[i].codes.dtype), xs[i].spec)
    return out


def _table(ctx, op, grid_xs, values, spec) -> np.ndarray | None:
    """Output codes of ``values(ctx, op, grid_xs)`` as one flat table, rounded onto ``spec`` as
    the runner rounds an executor's output; None where an entry cannot be rounded."""
    y = values(ctx, op, grid_xs)
    if isinstance(y, qspec.Coded):
        return y.codes.reshape(-1) if y.spec == spec and y.codes.dtype == qspec.code_dtype(spec) else None
    q = qspec.quantize_coded(np.asarray(y, np.float64), spec)
    return None if q is None else q.codes.reshape(-1)


def lookup(ctx, op, xs: list, values):
    """The output of elementwise op ``op`` as a Coded made by table (module docstring), or None
    where no table applies (the caller then runs ``values(ctx, op, xs)`` itself).

    ``values(ctx, op, xs)`` is the executor's arithmetic: it takes Coded inputs and returns the
    real values (float64) or a Coded of the output's own spec.
    """
    out = op.outputs[0]
    spec = ctx.spec(out)
    if ctx.reference or out in ctx.specs or not _codes8(spec):
        return None
    shape = tuple(ctx.graph.tensors[out].shape)
    coded = [i for i, x in enumerate(xs) if isinstance(x, qspec.Coded)]
    if not 1 <= len(coded) <= 2 or 2 * _CODES ** len(coded) > math.prod(shape):
        return None
    for i, x in enumerate(xs):
        if i in coded:
            if op.inputs[i] in ctx.specs or not _codes8(x.spec) or x.codes.dtype.itemsize != 1 or x.shape != shape:
                return None
        elif isinstance(x, qspec.Deferred) or np.size(x) != 1:
            return None
    table = _table(ctx, op, _grids(xs, coded), values, spec)
    if table is None:
        return None
    ctx.mark_on_grid(out)
    return qspec.Coded(read(table, [xs[i].codes for i in coded]), spec)


def read(table: np.ndarray, codes: list[np.ndarray]) -> np.ndarray:
    """``table`` indexed by one or two arrays of 8-bit codes of one shape (the first array's code the
    major index of a two-input table): a new array of that shape, in the first array's memory order
    (C order for C-contiguous codes). One pass (:mod:`hwsim.kernels.codelut`) when the code arrays
    are laid out densely in one memory order (C order, or the channels-last memory of a conv's
    codes seen as NCHW: ResNet-18 b8's residual adds 28 ms -> 5 ms per run, 2026-11-27), else
    numpy's ``np.take`` on the indices (the same values)."""
    flat = [c.view(np.uint8) for c in codes]
    out = np.empty_like(flat[0], dtype=table.dtype)  # order "K": the codes' memory order
    pairs = [qspec.flat_pair(c, out) for c in flat]
    if all(p is not None for p in pairs):
        from hwsim.kernels.codelut import _lookup1, _lookup2

        if len(flat) == 1:
            _lookup1(table, pairs[0][0], pairs[0][1])
        else:
            _lookup2(table, pairs[0][0], pairs[1][0], pairs[0][1])
        return out
    idx = flat[0] if len(flat) == 1 else (flat[0].astype(np.uint16) << 8) | flat[1]
    return np.take(table, idx)  # np.take: half the time of table[idx] here


#: codes of an int16 input
_CODES16 = 65536


def _codes16(spec) -> bool:
    """True for a per-tensor spec with a scale whose codes span exactly int16's range."""
    if spec.granularity != "tensor" or spec.scale is None:
        return False
    from hwsim import formats

    fmt = formats.get(spec.format)
    return fmt.integer_codes and (fmt.qmin, fmt.qmax) == (-32768, 32767)


def lookup16(ctx, op, xs: list, values):
    """The output real values of unary op ``op`` whose input holds int16 or 8-bit per-tensor codes
    and whose output is on an int16 per-tensor grid, by a table of every input code (module
    docstring), or None where it does not apply (``values`` as :func:`lookup`)."""
    out = op.outputs[0]
    spec = ctx.spec(out)
    if ctx.reference or out in ctx.specs or len(xs) != 1 or not isinstance(xs[0], qspec.Coded) \
            or op.inputs[0] in ctx.specs or not _codes16(spec):
        return None
    x = xs[0]
    if _codes16(x.spec):
        grid = np.arange(-32768, 32768, dtype=np.int64)
    elif _codes8(x.spec) and x.codes.dtype.itemsize == 1:  # by the codes' bytes, as read() indexes
        grid = np.arange(_CODES, dtype=np.uint8).view(x.codes.dtype)
    else:
        return None
    shape = tuple(ctx.graph.tensors[out].shape)
    if x.shape != shape or 2 * grid.size > math.prod(shape):
        return None
    y = values(ctx, op, [qspec.Coded(grid, x.spec)])
    if isinstance(y, qspec.Deferred):
        return None
    y = np.asarray(y, np.float64)
    if np.isnan(y).any():  # the runner refuses NaN outputs; only the codes present may say so
        return None
    table = qspec.quantize(y, spec, seed=ctx.seed)  # as the runner rounds an int16 output
    ctx.mark_on_grid(out)
    if grid.size == _CODES:
        return read(table, [x.codes])
    return np.take(table, x.codes.astype(np.int64) + 32768)
