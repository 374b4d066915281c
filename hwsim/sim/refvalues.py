"""Values of the float reference that stay a float product plus its bias until they are read.

The reference's conv2d and linear outputs are ``float64(y) + bias`` with ``y`` the product
(float32 BLAS by default, :mod:`hwsim.sim.refblas`). Making that float64 array costs a pass that
writes 8 bytes per value, and the next layer then rounds it to float32 in another pass. A
:class:`Biased` keeps ``y`` and the bias: the next layer's float32 operand is made in one pass
(:meth:`Biased.as_float32`, :mod:`hwsim.kernels.biasround`), the per-layer metrics add the bias
as they read (:func:`hwsim.sim.metrics.coded_errors`), and the float64 values (the same values
``y + bias`` gives) are made only for a reader that wants them (:meth:`Biased.real`).
A product without a bias (a MatMul, whose bias an Add after it adds) stays its float32 array
(:class:`Product`): the next product reads it as it is, a transpose or reshape moves it, an Add
of a bias vector along its last axis makes it a :class:`Biased` (:func:`add`), and the metrics
read its 4 bytes a value.
:class:`RefValues` holds a reference run's values and hands out float64 arrays.
"""

from __future__ import annotations

from collections.abc import MutableMapping

import numpy as np

from hwsim.sim.qspec import Coded, Deferred, flat_pair, real_of


class _OfProduct(Deferred):
    """A deferred value made from a reference product ``y`` (its shape)."""

    __slots__ = ("y",)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.y.shape

    @property
    def ndim(self) -> int:
        return self.y.ndim


class Biased(_OfProduct):
    """``float64(y) + bias`` along ``axis`` (the channel axis of ``y``; ``bias`` 1-D, one value
    per channel), made on first read."""

    __slots__ = ("bias", "axis", "_real", "_f32")

    def __init__(self, y: np.ndarray, bias: np.ndarray, axis: int, f32: np.ndarray | None = None):
        """``f32``: :meth:`as_float32`'s values when the maker has them already (made in its own pass)."""
        self.y, self.bias, self.axis = y, np.asarray(bias, np.float64), axis % y.ndim
        self._real, self._f32 = None, f32

    def real(self) -> np.ndarray:
        """The float64 values ``y + bias`` (numpy's promotion, ``y``'s memory order), made once."""
        if self._real is None:
            shape = [1] * self.y.ndim
            shape[self.axis] = -1
            self._real = self.y + self.bias.reshape(shape)
        return self._real

    def flat(self) -> np.ndarray | None:
        """``y`` as a 1-D view whose innermost axis is the channel axis (element ``i`` has the
        bias ``bias[i % C]``), or None when ``y`` is not laid out so."""
        if self.y.shape[self.axis] != self.bias.size or not self.y.size:
            return None
        pair = flat_pair(self.y, self.y)
        if pair is None or min(range(self.y.ndim), key=lambda i: (self.y.strides[i], -i)) != self.axis:
            return None
        return pair[0]

    def as_float32(self) -> np.ndarray:
        """``real()`` rounded to float32 (the next layer's float32 operand), in one pass from
        ``y`` when its layout allows, made once."""
        if self._f32 is None:
            flat = self.flat()
            if flat is None:
                self._f32 = self.real().astype(np.float32)
            else:
                from hwsim.kernels.biasround import _add_bias_f32

                out = np.empty_like(self.y, dtype=np.float32)
                _add_bias_f32(flat, self.bias, flat_pair(self.y, out)[1])
                self._f32 = out
        return self._f32


class Product(_OfProduct):
    """A float reference product ``y`` without a bias, kept in its own float type (float32, the
    reference's product type): :meth:`real` is ``y`` widened to float64 (made once; the value the
    reference stored before 2026-11-27), :meth:`as_float32` ``y`` itself."""

    __slots__ = ("_real",)

    def __init__(self, y: np.ndarray):
        self.y, self._real = y, None

    def real(self) -> np.ndarray:
        if self._real is None:
            self._real = self.y.astype(np.float64)
        return self._real

    def as_float32(self) -> np.ndarray:
        return self.y if self.y.dtype == np.float32 else self.real().astype(np.float32)


def product(y: np.ndarray):
    """``y`` (a product of the reference) as the reference stores it: a :class:`Product` when
    float32, else the array."""
    return Product(y) if y.dtype == np.float32 else y


class Widened(Deferred):
    """A float32 constant of the reference, read as float64 (:meth:`real`: a new array at each
    read, nothing kept) or as itself (:meth:`as_float32`). Why: the reference stored every
    constant as a float64 copy it never reads again after its op's run (resnet18: 89 MiB of
    fresh memory per reference run, MiniLM-L6 173 MiB; benchmarks/RESULTS.md, "Eighth session:
    footprint"). The values are those of ``data.astype(np.float64)``, the copy it replaces."""

    __slots__ = ("data",)

    def __init__(self, data: np.ndarray):
        self.data = data

    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def ndim(self) -> int:
        return self.data.ndim

    def real(self) -> np.ndarray:
        return self.data.astype(np.float64)

    def as_float32(self) -> np.ndarray:
        return self.data


def kept_as_stored(graph) -> set[str]:
    """Constants the float reference keeps as their float32 data (:class:`Widened`) instead of a
    float64 copy: float32 data (not integer codes; a parameter without data counts as the float32
    synthetic weights :func:`hwsim.sim.runner.ensure_weights` gives it) that only executors
    reading it through :func:`real_of` or :func:`as_dtype` read (conv2d, linear and matmul, and
    every executor not handed deferred inputs, :func:`hwsim.sim.registry.takes_coded`). The one
    decision :func:`constants` and :func:`hwsim.sim.memory.estimate` follow."""
    from hwsim.sim.registry import takes_coded

    handed = {t for op in graph.ops() if op.op not in ("conv2d", "linear", "matmul") and takes_coded(op)
              for t in op.inputs}
    return {n for n, t in graph.tensors.items() if n not in handed and (
        t.data is None and t.role in ("weight", "bias", "buffer")
        or isinstance(t.data, np.ndarray) and t.data.dtype == np.float32)}


def constants(graph) -> dict:
    """The reference's values of ``graph``'s constants: a :class:`Widened` for those
    :func:`kept_as_stored`, else :func:`hwsim.sim.qspec.const_value`."""
    from hwsim.sim.qspec import const_value

    kept = kept_as_stored(graph)
    return {n: Widened(t.data) if n in kept and isinstance(t.data, np.ndarray) else const_value(t)
            for n, t in graph.tensors.items() if t.data is not None}


def add(a, b) -> np.ndarray | Biased | None:
    """``real_of(a) + real_of(b)`` (float64) in one pass when one of them is a :class:`Biased`
    and both share one memory order with the channel axis innermost
    (:mod:`hwsim.kernels.refadd`; the same values); a :class:`Biased` when one is a
    :class:`Product` and the other a bias vector along its last axis (:func:`_biased_product`);
    None otherwise (the caller adds the reals)."""
    biased = _biased_product(a, b)
    if biased is not None:
        return biased
    if not isinstance(a, Biased):
        a, b = b, a  # a sum does not depend on the order of its two terms
    if not isinstance(a, Biased) or isinstance(b, Deferred) and not isinstance(b, Biased) \
            or np.shape(b) != a.shape or a.flat() is None:
        return None
    other = b.y if isinstance(b, Biased) else np.asarray(b)
    if isinstance(b, Biased) and (b.axis != a.axis or b.bias.size != a.bias.size) or other.dtype.kind != "f":
        return None
    out = np.empty_like(a.y, dtype=np.float64)  # y's memory order
    pair, pair_out = flat_pair(a.y, other), flat_pair(a.y, out)
    if pair is None or pair_out is None:
        return None
    from hwsim.kernels.refadd import _add_biased, _add_biased_1
    from hwsim.kernels.workqueue import pick

    with_b2 = isinstance(b, Biased)
    kernel, split = pick(_add_biased, _add_biased_1, out.size)
    kernel(pair[0], a.bias, pair[1], b.bias if with_b2 else a.bias, with_b2, pair_out[1], *split)
    return out


def _biased_product(a, b) -> Biased | None:
    """``Biased(p.y, v, -1)`` for a :class:`Product` ``p`` and a float array ``v`` of one value per
    element of ``p``'s last axis (shape (C,) or (1, ..., C)), in either order, whose values are
    those of ``float64(p.y) + v``: ``v`` float64, or a float32 ``v`` (widened exactly, as numpy
    promotes it beside float64); None for anything else."""
    if not isinstance(a, Product):
        a, b = b, a
    if not isinstance(a, Product) or isinstance(b, Deferred) or not a.ndim:
        return None
    v = np.asarray(b)
    c = a.shape[-1]
    if v.dtype.kind != "f" or v.size != c or v.ndim > a.ndim or v.shape[-1:] != (c,):
        return None
    return Biased(a.y, v.reshape(-1), a.ndim - 1)


def as_dtype(x, dtype) -> np.ndarray:
    """``x`` (an array or a deferred value) as an array of ``dtype`` (float32 from a
    :class:`Biased` in one pass, from a :class:`Widened` without one)."""
    if isinstance(x, (Biased, Coded, Product, Widened)) and np.dtype(dtype) == np.float32:
        return x.as_float32()
    return np.asarray(real_of(x), dtype)


class RefValues(MutableMapping):
    """Tensor name -> float64 values of a reference run; deferred values are made on first
    read (:meth:`raw` gives them as stored)."""

    def __init__(self, values: dict):
        self._values = values

    def raw(self, name: str):
        """The value as stored (possibly deferred)."""
        return self._values[name]

    def __getitem__(self, name: str) -> np.ndarray:
        return real_of(self._values[name])  # a deferred value keeps its array (the metrics read the same way)

    def __setitem__(self, name: str, value) -> None:
        self._values[name] = value

    def __delitem__(self, name: str) -> None:
        del self._values[name]

    def __iter__(self):
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __contains__(self, name) -> bool:
        return name in self._values


def raw_value(values, name: str):
    """``values[name]`` as stored (a :class:`RefValues` keeps deferred values deferred)."""
    return values.raw(name) if isinstance(values, RefValues) else values[name]
