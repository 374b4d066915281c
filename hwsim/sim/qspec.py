"""QuantSpec arithmetic for the simulator: quantize real values to a tensor's spec, recover codes,
calibrate missing scales.

Values flowing in the simulator are *real* float64 arrays. A tensor whose QuantSpec names a
low-precision format holds values on that format's grid: ``real = scale * (code - zero_point)``
for integer formats, ``real = scale * value`` for float, block, discrete and codebook formats.

Scale dtype: ONNX ``QuantizeLinear`` divides in the scale's type. QuantSpec stores scales as Python
floats, so a scale tuple whose values are all exactly float32 is used as float32 (the division
``x / scale`` is then float32, as ONNX with float32 scales), otherwise as float64.

Calibration (scales left ``None``): max-abs over the float reference values.

Each format names its rule (``Format.scale_rule``); this module applies it:

- ``max_abs`` (signed integer, fp8/fp6/fp4, pow2, nvfp4's tensor scale): ``max|x| / format.max``,
  zero point 0;
- ``min_max`` (unsigned integer): ``max(x) / qmax`` for non-negative tensors, else asymmetric
  ``scale = (max - min) / (qmax - qmin)``, ``zp = round(qmin - min / scale)``;
- ``mean_abs`` (ternary, binary, signed binary): ``scale = mean|x|`` (TWN / XNOR-Net style);
- ``none`` (fp16/bf16/fp32, MX block and VQ formats): no scale (block formats carry their own).

Weights calibrate per output channel (axis 0) or per group when the spec says so; activations
per tensor.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from hwsim import formats
from hwsim.graph.quant import Pruning, QuantSpec

def needs_scale(spec: QuantSpec) -> bool:
    """True if the spec's format works on scaled values and the scale is still missing."""
    return spec.scale is None and formats.get(spec.format).scale_rule != "none"


def is_passthrough(spec: QuantSpec) -> bool:
    """fp32/fp64 specs without scale: values are only rounded to float32 / left as is."""
    return spec.format in ("fp32", "fp64") and spec.scale is None


def scale_array(values) -> np.ndarray:
    """Scales as float32 when every value is exactly a float32, else float64 (module docstring).

    A tuple (a QuantSpec's ``scale``) gives one read-only array per distinct tuple, made once
    (:func:`_scale_array_of`: a BERT-base simulate asks about 600 times for a few dozen scales);
    anything else a new array."""
    if isinstance(values, tuple) and 0.0 not in values:  # (0.0 == -0.0: a zero's sign is not in the key)
        try:
            return _scale_array_of(values)
        except TypeError:  # an unhashable element: made below
            pass
    return _make_scale_array(values)


def _make_scale_array(values) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    f32 = arr.astype(np.float32)
    return f32 if np.array_equal(f32.astype(np.float64), arr) else arr


@functools.lru_cache(maxsize=4096)
def _scale_array_of(values: tuple) -> np.ndarray:
    """:func:`_make_scale_array` of a tuple without zeros, read-only (every caller shares it).
    The key is the tuple itself: equal tuples without zeros hold the same float64 values (a NaN
    element equals only itself, the same object)."""
    arr = _make_scale_array(values)
    arr.flags.writeable = False
    return arr


def spec_params(spec: QuantSpec, shape: tuple[int, ...]):
    """(scale, zero_point, axis, group_size) shaped for ``Format.quantize`` on a tensor of ``shape``."""
    scale = None if spec.scale is None else scale_array(spec.scale)
    zp = None if spec.zero_point is None else np.asarray(spec.zero_point, dtype=np.int64)
    if spec.granularity == "tensor":
        return (None if scale is None else scale.reshape(())), (None if zp is None else zp.reshape(())), None, None
    axis = spec.axis % len(shape) if shape else 0
    if spec.granularity == "channel":
        return scale, zp, axis, None
    gshape = list(shape)
    gshape[axis] = -(-shape[axis] // spec.group_size)
    if scale is not None and scale.size == math.prod(gshape) and len(shape) > 1:
        scale = scale.reshape(gshape)
        zp = None if zp is None else zp.reshape(gshape)
    return scale, zp, axis, spec.group_size


def quantize(x: np.ndarray, spec: QuantSpec, saturate: bool | None = None, seed: int = 0) -> np.ndarray:
    """Round real values ``x`` onto the grid of ``spec`` (float64 result, real units)."""
    if spec.format == "fp64":
        return np.asarray(x, dtype=np.float64)
    if is_passthrough(spec):
        return np.asarray(x, dtype=np.float32).astype(np.float64)
    fmt = formats.get(spec.format)
    if isinstance(fmt, formats.IntFormat):  # per tensor: one pass (hwsim.kernels.quantize), same values
        from hwsim.kernels import quantize as _qk

        out = _per_tensor_pass(x, spec, np.float64, _qk._real_f32, _qk._real_f64)
        if out is None:
            out = _per_channel_pass(x, spec)
        if out is not None:
            return out
    scale, zp, axis, gs = spec_params(spec, np.shape(x))
    x = np.asarray(x, dtype=np.float64)
    if scale is not None and scale.dtype == np.float32:
        x = x.astype(np.float32)
    return fmt.quantize(x, scale=scale, zero_point=zp, axis=axis, group_size=gs, saturate=saturate, seed=seed)


def _broadcast(p, spec: QuantSpec, shape, default):
    if p is None:
        return np.asarray(default)
    from hwsim.formats._base import broadcast_param

    _, _, axis, gs = spec_params(spec, shape)
    return broadcast_param(p, np.empty(shape, np.int8), axis, gs, "scale")


def codes(real: np.ndarray, spec: QuantSpec) -> np.ndarray:
    """Integer codes ``rint(real / scale) + zero_point`` (int64) of values on an integer grid
    (per tensor on float64 values: in one pass, :mod:`hwsim.kernels.onepass`, same values)."""
    c = _tensor_codes(real, spec)
    if c is not None:
        return c
    scale, zp, _, _ = spec_params(spec, np.shape(real))
    s = _broadcast(scale, spec, np.shape(real), 1.0).astype(np.float64)
    z = _broadcast(zp, spec, np.shape(real), 0).astype(np.int64)
    return np.rint(np.asarray(real, dtype=np.float64) / s).astype(np.int64) + z


def _tensor_codes(real, spec: QuantSpec) -> np.ndarray | None:
    """:func:`codes` of float64 ``real`` with a per-tensor scale in one pass (``real``'s memory
    order); None where that does not apply or a quotient is not finite (numpy's path decides)."""
    if spec.granularity != "tensor" or spec.scale is None or not isinstance(real, np.ndarray) \
            or real.dtype != np.float64:
        return None
    out = np.empty_like(real, dtype=np.int64)
    flat = flat_pair(real, out)
    if flat is None:
        return None
    from hwsim.kernels import onepass

    zp = 0 if spec.zero_point is None else int(spec.zero_point[0])
    if onepass._grid_codes(flat[0], np.float64(scale_array(spec.scale)[0]), np.int64(zp), flat[1]):
        return None
    return out


def code_dtype(spec: QuantSpec):
    """np.uint8 / np.int8 when the codes of ``spec``'s integer format span exactly that type's
    range (saturating to the type saturates to the format), else None."""
    return _code_dtype_of(spec.format)


@functools.lru_cache(maxsize=512)
def _code_dtype_of(name: str):
    """:func:`code_dtype` of format ``name`` (a format name always parses to the same format)."""
    fmt = formats.get(name)
    if not fmt.integer_codes:
        return None
    for dt in (np.uint8, np.int8):
        if (fmt.qmin, fmt.qmax) == (np.iinfo(dt).min, np.iinfo(dt).max):
            return dt
    return None


def from_codes(c: np.ndarray, spec: QuantSpec) -> np.ndarray:
    """Real values ``scale * (code - zero_point)`` (float64) of integer codes."""
    scale, zp, _, _ = spec_params(spec, np.shape(c))
    s = _broadcast(scale, spec, np.shape(c), 1.0).astype(np.float64)
    z = _broadcast(zp, spec, np.shape(c), 0).astype(np.int64)
    return (np.asarray(c).astype(np.int64) - z).astype(np.float64) * s


class Deferred:
    """A value whose float64 array is made only when something reads it (:meth:`real`)."""

    __slots__ = ()

    def real(self) -> np.ndarray:
        raise NotImplementedError


class Coded(Deferred):
    """The real value of a tensor held as its integer codes under ``spec``: ``(code - zero_point)
    * scale`` (float64, as :func:`from_codes`), made once, only when something reads it.

    Integer executors return one for an integer output whose codes they keep
    (:func:`hwsim.sim.compute._finish_int`): the next integer op reads the codes
    (:meth:`hwsim.sim.registry.ExecContext.codes_of`), the per-layer metrics read them too
    (:func:`hwsim.sim.metrics.coded_errors`), and every other reader gets :meth:`real`.
    """

    __slots__ = ("codes", "spec", "_real")

    def __init__(self, codes: np.ndarray, spec: QuantSpec, real: np.ndarray | None = None):
        self.codes, self.spec, self._real = codes, spec, real  # real: made already (equal to real())

    @property
    def shape(self) -> tuple[int, ...]:
        return self.codes.shape

    @property
    def ndim(self) -> int:
        return self.codes.ndim

    def per_tensor(self) -> tuple[int, float] | None:
        """(zero point, scale as float64) of a per-tensor spec, else None."""
        if self.spec.granularity != "tensor":
            return None
        zp = 0 if self.spec.zero_point is None else int(self.spec.zero_point[0])
        return zp, float(scale_array(self.spec.scale)[0])

    def as_float32(self) -> np.ndarray:
        """``real()`` rounded to float32. With float32 scales and codes of at most 16 bits it is
        computed in float32 straight from the codes: ``code - zero_point`` is exact there and the
        product with a float32 scale, exact in float64, is rounded once either way."""
        if self.codes.dtype.itemsize > 2 or self.spec.granularity == "group" or self._real is not None:
            return np.asarray(self.real(), np.float32)
        shape = np.shape(self.codes)
        scale, zp, _, _ = spec_params(self.spec, shape)
        if scale is None or scale.dtype != np.float32:
            return np.asarray(self.real(), np.float32)
        s = _broadcast(scale, self.spec, shape, 1.0)
        z = _broadcast(zp, self.spec, shape, 0)
        y = self.codes.astype(np.float32)
        if np.any(z):
            y -= np.asarray(z, np.float32)  # exact: integers below 2**17
        y *= np.asarray(s, np.float32)
        return y

    def real_f32(self) -> np.ndarray | None:
        """``real()`` rounded to float32, as float64 (the codes' memory layout), in one pass from
        codes of at most 16 bits with a per-tensor float32 scale (exact by :meth:`as_float32`'s
        argument; :func:`hwsim.kernels.onepass._dequant_f32`); None otherwise."""
        pt = self.per_tensor()
        if pt is None or self.codes.dtype.kind not in "iu" or self.codes.dtype.itemsize > 2 or not self.codes.size:
            return None
        scale = scale_array(self.spec.scale)
        if scale.dtype != np.float32:
            return None
        out = np.empty_like(self.codes, dtype=np.float64)
        flat = flat_pair(self.codes, out)
        if flat is None:
            return None
        from hwsim.kernels import onepass

        onepass._dequant_f32(flat[0], np.int64(pt[0]), scale[0], flat[1])
        return out

    def real(self) -> np.ndarray:
        """The real values (float64, the codes' memory layout), made on the first call."""
        if self._real is None:
            pt = self.per_tensor()
            if pt is None:
                self._real = from_codes(self.codes, self.spec)
            else:  # from_codes' values with fewer passes
                y = self.codes.astype(np.float64)
                if pt[0]:
                    y -= pt[0]  # exact: small integers
                y *= np.float64(pt[1])
                self._real = y
        return self._real


def quantize_coded(x: np.ndarray, spec: QuantSpec) -> Coded | None:
    """:func:`quantize` of real values ``x`` (half-even, saturating) as a :class:`Coded` holding
    the 8-bit codes, in one pass without float64 temporaries (:mod:`hwsim.kernels.quantize`), for
    a per-tensor scaled spec whose codes span uint8 / int8 (:func:`code_dtype`); its real values
    equal :func:`quantize`'s. None for any other spec, for non-float or non-finite-scale input
    and when ``x`` holds NaN (:func:`quantize` says what is wrong)."""
    narrow = code_dtype(spec)
    if narrow is None:
        return None
    from hwsim.kernels import quantize as _qk

    out = _per_tensor_pass(x, spec, narrow, _qk._codes_f32, _qk._codes_f64)
    return None if out is None else Coded(out, spec)


def _per_tensor_pass(x, spec: QuantSpec, dtype, f32_kernel, f64_kernel) -> np.ndarray | None:
    """``kernel(x, scale, zero point, qmin, qmax, out)`` of :mod:`hwsim.kernels.quantize` into a new
    array of ``dtype`` (``x``'s memory order), the float32 kernel for a scale that is exactly a
    float32 (:func:`scale_array`); None where it does not apply: a spec that is not per tensor
    or has no finite positive scale, an ``x`` that is not float32/float64, or one holding NaN."""
    x = np.asarray(x)
    if spec.granularity != "tensor" or spec.scale is None or x.dtype not in (np.float32, np.float64):
        return None
    scale = scale_array(spec.scale)[0]
    if not (np.isfinite(scale) and scale > 0):
        return None
    out = np.empty_like(x, dtype=dtype)  # x's memory order
    flat = flat_pair(x, out)
    if flat is None:
        x = np.ascontiguousarray(x)
        out = np.empty(x.shape, dtype)
        flat = x.reshape(-1), out.reshape(-1)
    fmt = formats.get(spec.format)
    zp = 0 if spec.zero_point is None else int(spec.zero_point[0])
    kernel = f32_kernel if scale.dtype == np.float32 else f64_kernel
    if kernel(flat[0], scale, np.float64(zp), np.float64(fmt.qmin), np.float64(fmt.qmax), flat[1]):
        return None
    return out


def _channel_view(x, spec: QuantSpec) -> np.ndarray | None:
    """``x`` (C-contiguous float32 / float64, not empty) as (outer, channels, inner) around the
    channel axis of a per-channel ``spec``, without a copy; None otherwise."""
    x = np.asarray(x)
    if spec.granularity != "channel" or x.ndim == 0 or x.size == 0 or x.dtype not in (np.float32, np.float64) \
            or not x.flags.c_contiguous:
        return None
    axis = spec.axis % x.ndim
    return x.reshape(math.prod(x.shape[:axis]), x.shape[axis], -1)


def _per_channel_pass(x, spec: QuantSpec, codes: np.dtype | None = None) -> np.ndarray | None:
    """:func:`quantize` of an integer format per channel in one pass (the kernels of
    :mod:`hwsim.kernels.quantize`, the formats' IEEE operations in their order), or None where
    it does not apply (see :func:`_channel_view`; scales that are not one finite positive value
    per channel; zero points that are not one per channel; NaN in ``x``). ``codes``: also the
    codes, as an array of that type made in the same pass (then a :class:`Coded`)."""
    from hwsim.kernels import quantize as _qk

    x3 = _channel_view(x, spec)
    if x3 is None or spec.scale is None or len(spec.scale) != x3.shape[1]:
        return None
    scale = scale_array(spec.scale)
    if not (np.isfinite(scale).all() and (scale > 0).all()):
        return None
    if spec.zero_point is None:
        zp = np.zeros(len(scale))
    elif len(spec.zero_point) == len(scale):
        zp = np.asarray(spec.zero_point, np.int64).astype(np.float64)
    else:
        return None
    fmt = formats.get(spec.format)
    out = np.empty(np.shape(x), np.float64)
    c = np.empty(np.shape(x), codes) if codes is not None else np.empty(0, np.int64)
    kernel = _qk._real_channels_f32 if scale.dtype == np.float32 else _qk._real_channels_f64
    if kernel(x3, scale, zp, np.float64(fmt.qmin), np.float64(fmt.qmax), out.reshape(x3.shape),
              c.reshape(x3.shape if codes is not None else (0, 0, 0))):
        return None
    return out if codes is None else Coded(c, spec, out)


def quantize_weight_coded(x: np.ndarray, spec: QuantSpec) -> Coded | None:
    """:func:`quantize` of a weight of an integer format per channel as a :class:`Coded` holding
    its codes (uint8 / int8 where they span that type, :func:`code_dtype`, else int64: what the
    integer executors read, :meth:`hwsim.sim.registry.ExecContext.codes_of`) and its real values,
    both made in one pass; None where :func:`_per_channel_pass` does not apply."""
    if not isinstance(formats.get(spec.format), formats.IntFormat):
        return None
    return _per_channel_pass(x, spec, np.dtype(code_dtype(spec) or np.int64))


def flat_pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """1-D views of ``a`` and ``b`` (same shape) in one memory order, or None when no order
    lays both out contiguously (no copy is made)."""
    if a.shape != b.shape:
        return None
    order = sorted(range(a.ndim), key=lambda i: -a.strides[i])
    at, bt = a.transpose(order), b.transpose(order)
    if not (at.flags.c_contiguous and bt.flags.c_contiguous):
        return None
    return at.reshape(-1), bt.reshape(-1)


def real_of(x):
    """``x`` itself, or the real values of a :class:`Deferred` (a :class:`Coded`, or a float
    reference value :class:`hwsim.sim.refvalues.Biased`)."""
    return x.real() if isinstance(x, Deferred) else x


def unscaled(real: np.ndarray, spec: QuantSpec) -> np.ndarray:
    """Format-domain values ``real / scale`` (float64) for float-like formats."""
    scale, _, _, _ = spec_params(spec, np.shape(real))
    s = _broadcast(scale, spec, np.shape(real), 1.0).astype(np.float64)
    return np.asarray(real, dtype=np.float64) / s


def _reduce(x: np.ndarray, spec: QuantSpec, fn) -> np.ndarray:
    """Apply a reduction over the elements that share one scale; returns a flat array."""
    if spec.granularity == "tensor" or x.ndim == 0:
        return np.atleast_1d(fn(x.reshape(-1)))
    axis = spec.axis % x.ndim
    if spec.granularity == "channel":
        moved = np.moveaxis(x, axis, 0).reshape(x.shape[axis], -1)
        return fn(moved, axis=1)
    n, g = x.shape[axis], spec.group_size
    ngroups = -(-n // g)
    pad = ngroups * g - n
    xm = np.moveaxis(x, axis, -1)
    if pad:
        xm = np.concatenate([xm, np.repeat(xm[..., -1:], pad, axis=-1)], axis=-1)
    red = fn(xm.reshape(xm.shape[:-1] + (ngroups, g)), axis=-1)
    return np.moveaxis(red, -1, axis).reshape(-1)


def calibrate(spec: QuantSpec, ref: np.ndarray) -> QuantSpec:
    """A copy of ``spec`` with scale (and zero point) chosen from reference values (docstring)."""
    if not needs_scale(spec):
        return spec
    fmt = formats.get(spec.format)
    if fmt.scale_rule == "max_abs" and _channel_view(ref, spec) is not None:  # one pass, the same maxima
        from hwsim.kernels import quantize as _qk

        x3 = _channel_view(ref, spec)
        peak = np.empty(x3.shape[1])
        _qk._channel_max_abs(x3, peak)
        return _with_scale(spec, peak / float(fmt.max), None)
    if uses_span(spec):
        return calibrate_span(spec, finite_span(ref))
    x = np.asarray(ref, dtype=np.float64)
    if not np.isfinite(x).all():  # nan_to_num copies; skip it when there is nothing to replace
        x = np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
    if x.size == 0:
        return spec
    zp = None
    rule = fmt.scale_rule
    if rule == "mean_abs":
        scale = _reduce(np.abs(x), spec, np.mean)
    elif rule == "min_max" and x.min() < 0:  # non-negative data: the same as max_abs with zp 0
        lo = np.minimum(_reduce(x, spec, np.min), 0.0)
        hi = np.maximum(_reduce(x, spec, np.max), 0.0)
        scale = (hi - lo) / (fmt.qmax - fmt.qmin)
        scale = np.where(scale > 0, scale, 1.0)
        zp = np.clip(np.rint(fmt.qmin - lo / scale), fmt.qmin, fmt.qmax).astype(np.int64)
    else:
        scale = _reduce(np.abs(x), spec, np.max) / float(fmt.max)
    return _with_scale(spec, scale, zp)


def uses_span(spec: QuantSpec) -> bool:
    """Whether :func:`calibrate` sets ``spec``'s scale from :func:`finite_span` alone (a per-tensor
    ``max_abs`` or ``min_max`` rule): then one statistic serves every such spec of a tensor (an
    8-bit and a 16-bit format of the same activation, :func:`hwsim.sim.runner.calibrate_graph`)."""
    return spec.granularity == "tensor" and formats.get(spec.format).scale_rule in ("max_abs", "min_max")


def finite_span(x) -> tuple[float, float, int]:
    """(smallest finite value, largest finite value, element count) of ``x``, in one pass
    (:func:`hwsim.kernels.quantize._finite_range`); (inf, -inf, n) when none is finite."""
    from hwsim.kernels import quantize as _qk

    x = np.asarray(x)
    if x.dtype.kind != "f":
        x = x.astype(np.float64)
    flat = flat_pair(x, x)
    lo, hi = _qk._finite_range(np.ascontiguousarray(x).reshape(-1) if flat is None else flat[0])
    return float(lo), float(hi), int(x.size)


def calibrate_span(spec: QuantSpec, span: tuple[float, float, int]) -> QuantSpec:
    """:func:`calibrate` of a spec that :func:`uses_span`, from its tensor's :func:`finite_span`:
    the values of the passes it replaces (non-finite values count as 0, as ``np.nan_to_num``)."""
    lo, hi, size = span
    if size == 0:
        return spec
    fmt = formats.get(spec.format)
    lo0, hi0 = min(lo, 0.0), max(hi, 0.0)  # the zeros nan_to_num leaves change neither
    if fmt.scale_rule == "min_max" and lo < 0:  # non-negative data: the same as max_abs with zp 0
        scale = np.array([hi0 - lo0]) / (fmt.qmax - fmt.qmin)
        scale = np.where(scale > 0, scale, 1.0)
        zp = np.clip(np.rint(fmt.qmin - lo0 / scale), fmt.qmin, fmt.qmax).astype(np.int64)
        return _with_scale(spec, scale, zp)
    return _with_scale(spec, np.array([max(-lo0, hi0)]) / float(fmt.max), None)


def _with_scale(spec: QuantSpec, scale: np.ndarray, zp: np.ndarray | None) -> QuantSpec:
    """``spec`` with calibrated ``scale`` (a non-positive or non-finite one becomes 1; stored as
    float32 values) and zero point ``zp`` (None: none)."""
    scale = np.where((scale > 0) & np.isfinite(scale), scale, 1.0).astype(np.float32).astype(np.float64)
    return spec.model_copy(update={
        "scale": tuple(float(s) for s in scale),
        "zero_point": None if zp is None else tuple(int(z) for z in zp),
    })


def prepare_weight(real: np.ndarray, spec: QuantSpec, pruning: Pruning | None, seed: int = 0,
                   stored_codes: bool = False, coded: bool = False) -> tuple[np.ndarray | Coded, QuantSpec]:
    """The one weight preparation that simulator, cost model and solver share.

    Prune (``pruning``, :func:`hwsim.sim.prune.apply_pruning`), calibrate a missing scale on the
    pruned values (:func:`calibrate`), then quantize (:func:`quantize`).

    Parameters
    ----------
    real : ndarray
        Real weight values in the weight's own shape (e.g. (out, in, kh, kw)).
    spec : QuantSpec
        The weight tensor's spec; a missing scale is calibrated here.
    pruning : Pruning or None
        The layer's pruning (None: the constant is not a MAC weight, no pruning).
    seed : int
        Seed of VQ codebooks and stochastic rounding.
    stored_codes : bool
        The tensor is stored as integer codes (ONNX initializer of an integer type): its spec is
        not recalibrated, and an unscaled pass-through spec leaves the values as they are.
    coded : bool
        Return an integer format per channel as a :class:`Coded` (its codes made in the
        quantizing pass; :func:`quantize_weight_coded`), for the simulator's integer executors.

    Returns
    -------
    (values, spec)
        Quantized real values (float64, shape of ``real``; a :class:`Coded` holding them with
        ``coded``) and the calibrated spec.
    """
    from hwsim.sim.prune import apply_pruning

    if pruning is not None:
        real = apply_pruning(real, pruning)
    spec = weight_spec(real, spec, stored_codes)
    if stored_codes and is_passthrough(spec):
        return np.asarray(real), spec
    done = quantize_weight_coded(real, spec) if coded else None
    return (quantize(real, spec, seed=seed) if done is None else done), spec


def weight_spec(real, spec: QuantSpec, stored_codes: bool = False) -> QuantSpec:
    """The spec a weight of (pruned) values ``real`` is quantized with (:func:`prepare_weight`,
    :class:`TableRows`): ``spec``, its missing scale calibrated on ``real`` unless the tensor is
    stored as integer codes."""
    return calibrate(spec, real) if needs_scale(spec) and not stored_codes else spec


def const_value(t) -> np.ndarray | Coded:
    """:func:`const_real` of a constant tensor, deferred (a :class:`Coded`) where it is made from
    stored integer codes."""
    data = np.asarray(t.data)
    if data.dtype.kind in "iu" and formats.get(t.quant.format).integer_codes and t.quant.scale is not None:
        return Coded(data, t.quant)
    return const_real(t)


def const_real(t) -> np.ndarray:
    """Real values of a constant tensor (integer codes dequantized with their spec)."""
    data = np.asarray(t.data)
    if data.dtype.kind in "iub" and formats.get(t.quant.format).integer_codes and t.quant.scale is not None:
        return from_codes(data, t.quant)
    return data.astype(np.float64)


def const_real_kept(t) -> np.ndarray:
    """:func:`const_real`, read-only, kept for a frozen constant (an imported model's biases:
    :func:`hwsim.kernels.packcache.derived`) instead of made on every run."""
    from hwsim.kernels import packcache

    def make(_) -> np.ndarray:
        out = const_real(t)
        out.flags.writeable = False
        return out

    return packcache.derived(np.asarray(t.data), ("real values", t.quant), make)


class TableRows:
    """An embedding table in the quantized run, its rows quantized when an op reads them
    (:meth:`take`) instead of the whole table at once: a 32,000 x 4,096 vocabulary is 1 GiB of
    float64 values, of which a run reads a few rows (MiniLM-L6's 30,522-row table took 0.15-0.33 s
    of each solve plan, 2026-11-27).

    Exact: ``spec`` (an integer format per tensor or per row, :func:`table_rows_apply`) is
    calibrated on the whole table as :func:`prepare_weight` calibrates it, and the integer
    quantization rounds each element with its own row's scale and zero point alone, so
    ``quantize(table, spec)[ids]`` equals :meth:`take` element for element (its rows' scales are
    float32 values, as the whole table's are, so the same kernel divides). Not a :class:`Deferred`:
    only the embedding executor reads it (:func:`hwsim.sim.runner._Weights`)."""

    __slots__ = ("table", "spec", "seed")

    def __init__(self, table: np.ndarray, spec: QuantSpec, seed: int = 0):
        self.table, self.spec, self.seed = table, spec, seed

    def take(self, ids) -> np.ndarray:
        """Quantized real values (float64) of rows ``ids`` (any shape; negative ids count from
        the end): shape ``ids.shape + table.shape[1:]``."""
        ids = np.asarray(ids, np.int64)
        flat = ids.reshape(-1)
        if not flat.size:
            return np.zeros(ids.shape + self.table.shape[1:])
        rows = np.asarray(self.table[flat], np.float64)
        spec = self.spec
        if spec.granularity == "channel":  # axis 0: the rows' own scales and zero points
            pick = lambda v: None if v is None else tuple(np.asarray(v)[flat].tolist())  # noqa: E731
            spec = spec.model_copy(update={"scale": pick(spec.scale), "zero_point": pick(spec.zero_point)})
        return quantize(rows, spec, seed=self.seed).reshape(ids.shape + self.table.shape[1:])


def table_rows_apply(t, spec: QuantSpec) -> bool:
    """Whether embedding table ``t`` (a constant without stored codes) runs as :class:`TableRows`
    under ``spec`` (its calibrated spec): an integer format per tensor or per row (axis 0), float32
    scales, a float table of at least two dimensions without NaN (a NaN anywhere in it is
    refused by the whole table's quantization, as before)."""
    data = np.asarray(t.data)
    if data.ndim < 2 or data.dtype.kind != "f" or spec.scale is None \
            or not isinstance(formats.get(spec.format), formats.IntFormat):
        return False
    if not (spec.granularity == "tensor" or (spec.granularity == "channel" and spec.axis % data.ndim == 0)):
        return False
    return scale_array(spec.scale).dtype == np.float32 and not np.isnan(data).any()


def prepare_constant(t, pruning: Pruning | None, seed: int = 0,
                     coded: bool = False) -> tuple[np.ndarray | Coded, QuantSpec]:
    """:func:`prepare_weight` of a graph constant ``t`` (a Tensor with data): what the simulator runs.

    Unpruned codes on their own spec's grid (:func:`stored_codes_on_grid`) are returned as their
    real values without the quantize pass, which would give them back unchanged.
    """
    from hwsim.sim.boundary import is_integer_type

    if grid_codes(t, pruning) is not None:
        return const_real(t), t.quant
    return prepare_weight(const_real(t), t.quant, pruning, seed, is_integer_type(t.dtype), coded)


def grid_codes(t, pruning: Pruning | None = None) -> np.ndarray | None:
    """The stored codes of constant ``t`` (uint8 / int8 for 8-bit formats, else int64) when they
    are what the simulator runs (:func:`prepare_constant`): no pruning, and codes of the
    tensor's own integer format on its grid (:func:`_stored_codes_on_grid`, kept for a frozen
    constant: :func:`hwsim.kernels.packcache.derived`); else None."""
    from hwsim.kernels import packcache

    if pruning is not None and pruning.kind != "none":
        return None
    if not packcache.derived(np.asarray(t.data), ("codes on grid", t.quant), lambda _: _stored_codes_on_grid(t)):
        return None
    narrow = code_dtype(t.quant)
    return np.asarray(t.data).astype(narrow or np.int64, copy=False)


def _stored_codes_on_grid(t) -> bool:
    """True when constant ``t`` stores codes of its own spec's integer format of at most 16 bits,
    within its range, with normal positive scales (per tensor or per channel): then
    :func:`quantize` of their real values returns those values. ``(c - z) * s`` is exact in
    float64 (at most 17 + 24 significant bits); rounded to float32 and divided by ``s`` in
    float32 it is within ``2**16 * 2**-23 = 2**-7`` of ``c - z``, which rint restores, and the
    clip leaves codes in range alone; a float64 scale divides in float64, closer still."""
    data, spec = np.asarray(t.data), t.quant
    if data.dtype.kind not in "iu" or spec.scale is None or spec.granularity == "group":
        return False
    fmt = formats.get(spec.format)
    if not fmt.integer_codes or fmt.bits > 16:
        return False
    if not _normal_scales(spec.scale):
        return False
    info = np.iinfo(data.dtype)
    if fmt.qmin <= info.min and info.max <= fmt.qmax:
        return True
    return not data.size or (fmt.qmin <= int(data.min()) and int(data.max()) <= fmt.qmax)


def _normal_scales(scale) -> bool:
    """True when every scale is finite and at least float32's smallest normal (asked for every
    stored weight on every run: answered once per scale tuple)."""
    try:
        return _normal_scales_of(tuple(scale))
    except TypeError:  # an unhashable element
        return _normal_scales_of.__wrapped__(tuple(scale))


@functools.lru_cache(maxsize=4096)
def _normal_scales_of(scale: tuple) -> bool:
    s = np.asarray(scale, np.float64)
    return bool(np.all(np.isfinite(s) & (s >= np.finfo(np.float32).tiny)))


def weight_codes(values: np.ndarray, spec: QuantSpec) -> np.ndarray:
    """Signed element codes (int64, rows = axis 0, reduction axis flattened) of prepared weights.

    0 is a zero weight, equal codes are equal format-domain values (the value divided by its
    scale, so channels with their own scales share codes), |code| grows with the magnitude: the
    integer itself on an integer grid (int, ternary, binary), else the rank of the magnitude. This is
    what the cost model's zero-skipping, N:M and repetition statistics read.
    """
    v = unscaled(values, spec) if spec.scale is not None else np.asarray(values, np.float64)
    v = v.astype(np.float32)  # equal format values divided back by their scale differ by < 1 ulp
    v = v.reshape(v.shape[0], -1) if v.ndim else v.reshape(1, 1)
    r = np.rint(v)
    if v.size and np.abs(r).max() < 2**15 and np.array_equal(r, v):  # an integer grid: the codes themselves
        return r.astype(np.int64)
    mags, inv = np.unique(np.abs(v), return_inverse=True)
    ranks = inv.reshape(v.shape).astype(np.int64) + (0 if mags.size and mags[0] == 0 else 1)
    return ranks * np.sign(v).astype(np.int64)
