"""Shared machinery of all number formats: the abstract :class:`Format`, rounding, scale broadcast.

A format is a frozen dataclass built from a few parameters; every constant is a derived property.
``quantize`` works in three steps that every format shares:

1. ``t = x / scale`` (per tensor, per channel along ``axis`` or per group of ``group_size``),
   in numpy's promoted dtype: ONNX ``QuantizeLinear`` requires x and scale of one type, so float32
   x with a float32 scale divides in float32 exactly like its reference evaluator; a Python float
   or float64 scale divides in float64;
2. ``v = self._round(t, zero_point, ...)``: the nearest representable value minus the zero point,
   in the *unscaled* domain (a float64 array);
3. ``y = v * scale`` (float64 result).
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Literal

import numpy as np

from hwsim.errors import ConfigError, InputDataError

Rounding = Literal["half_even", "half_away", "half_up", "toward_zero", "stochastic"]
ROUNDING_MODES: tuple[str, ...] = ("half_even", "half_away", "half_up", "toward_zero", "stochastic")


def check_rounding(rounding: str) -> str:
    """Return ``rounding`` if it is a known mode, else raise :class:`ConfigError`."""
    if rounding not in ROUNDING_MODES:
        raise ConfigError(f"unknown rounding mode {rounding!r}; use one of {', '.join(ROUNDING_MODES)}")
    return rounding


def round_integer(r: np.ndarray, rounding: str, rng: np.random.Generator | None = None) -> np.ndarray:
    """Round real numbers ``r`` to integers with the given mode (float64 in, float64 out).

    Parameters
    ----------
    r : ndarray of float64
        Values in units of the quantum (ulp); must be exactly representable, |r| < 2**52.
    rounding : str
        ``half_even`` (ties to even, IEEE default), ``half_away`` (ties away from zero),
        ``half_up`` (ties toward +inf), ``toward_zero`` (truncate), ``stochastic`` (floor(r + u),
        u ~ U[0, 1) from ``rng``: rounds up with probability equal to the fractional part).
    rng : numpy.random.Generator, optional
        Required for ``stochastic``.
    """
    if rounding == "half_even":
        return np.rint(r)
    if rounding == "half_away":
        return np.copysign(np.floor(np.abs(r) + 0.5), r)
    if rounding == "half_up":
        return np.floor(r + 0.5)
    if rounding == "toward_zero":
        return np.trunc(r)
    if rounding == "stochastic":
        if rng is None:
            rng = np.random.default_rng(0)
        return np.floor(r + rng.random(np.shape(r)))
    raise ConfigError(f"unknown rounding mode {rounding!r}; use one of {', '.join(ROUNDING_MODES)}")


def broadcast_param(p, x: np.ndarray, axis: int | None, group_size: int | None, what: str):
    """Shape a scale or zero point so it broadcasts against ``x``.

    Scalar -> per tensor. 1-D of length ``x.shape[axis]`` -> per channel along ``axis``.
    With ``group_size``: ``p`` holds one value per group of ``group_size`` consecutive elements
    along ``axis`` (1-D of length ceil(n/group_size), or ``x.ndim``-D like ONNX blocked
    quantization) and is repeated to the full length. Same-shape arrays pass through.
    """
    if p is None:
        return None
    p = np.asarray(p)
    if p.ndim == 0 or p.shape == x.shape:
        return p
    if axis is None:
        raise InputDataError(f"{what} has shape {p.shape} but no axis was given; pass axis=")
    ax = axis % x.ndim
    n = x.shape[ax]
    if group_size is not None:
        ngroups = -(-n // group_size)
        if p.ndim == 1:
            if p.shape[0] != ngroups:
                raise InputDataError(f"{what} has {p.shape[0]} values but axis {axis} has {ngroups} "
                                     f"groups of {group_size}")
            p = np.repeat(p, group_size)[:n]
        else:
            p = np.repeat(p, group_size, axis=ax)
            p = np.take(p, np.arange(n), axis=ax)
            return p
    if p.ndim != 1 or p.shape[0] != n:
        raise InputDataError(f"{what} has shape {p.shape}; expected a scalar or {n} values "
                             f"(one per index of axis {axis} of an input of shape {x.shape})")
    shape = [1] * x.ndim
    shape[ax] = n
    return p.reshape(shape)


@dataclass(frozen=True)
class MacOperand:
    """How one element of a format enters a multiplier (the cost model's operand description).

    Attributes
    ----------
    kind : str
        Multiplier family: ``int``, ``float``, ``binary``, ``ternary``, ``signed_binary``, ``pow2``.
    sig_bits : int
        Significand bits entering the multiplier (integers: all bits).
    exp_bits : int
        Exponent field bits (0 for integers).
    signed : bool
        Whether the operand carries a sign.
    block : int
        Elements sharing one block scale (its exponent add is amortised over them), 0 = none.
    shift : int
        pow2: the largest shift.
    """

    kind: str
    sig_bits: int
    exp_bits: int
    signed: bool
    block: int = 0
    shift: int = 0


@dataclass(frozen=True)
class Format(abc.ABC):
    """A number format. Subclasses are frozen dataclasses; all constants are derived properties.

    Every subclass also has ``bits`` (an int field or property): bits of one stored element code,
    excluding shared scales and codebooks (int8 -> 8, ternary -> 2, mxfp4_e2m1 -> 4).
    """


    # ---- identity -------------------------------------------------------------------------
    @property
    @abc.abstractmethod
    def name(self) -> str:
        """Canonical name; ``hwsim.formats.get(fmt.name) == fmt`` for default parameters."""

    @property
    @abc.abstractmethod
    def kind(self) -> str:
        """One of int, float, block, ternary, binary, signed_binary, pow2, vq."""

    @property
    def bits_per_element(self) -> float:
        """Effective storage bits per element, shared per-block scales included."""
        return float(self.bits)

    @property
    def is_float(self) -> bool:
        """True for formats with an exponent field (float and float-element block formats)."""
        return False

    @property
    @abc.abstractmethod
    def signed(self) -> bool:
        """True if negative values are representable."""

    @property
    @abc.abstractmethod
    def max(self) -> float:
        """Largest finite magnitude of the unscaled format."""

    @property
    def min(self) -> float:
        """Most negative finite value of the unscaled format (0 for unsigned formats)."""
        return -self.max if self.signed else 0.0

    # ---- policy: what the rest of hwsim asks the format instead of branching on ``kind`` ------
    @property
    def scale_rule(self) -> str:
        """How a missing scale is calibrated from data (:func:`hwsim.sim.qspec.calibrate`).

        ``max_abs``: ``max|x| / self.max``; ``mean_abs``: ``mean|x|`` (TWN / XNOR-Net: max-abs
        would zero almost every weight); ``min_max``: asymmetric over ``[min(x, 0), max(x, 0)]``
        with a zero point; ``none``: the format takes no scale (wide floats, MX blocks, VQ).
        """
        return "max_abs"

    @property
    def weight_granularity(self) -> str:
        """Default scale sharing of a weight in this format: ``tensor`` or ``channel`` (axis 0)."""
        return "tensor"

    @property
    def mac_operand(self) -> str:
        """Name of the plain int/float format one element enters a MAC as (cost model operand
        matching): itself for int and float, the element of a block format, int8 for decoded
        VQ centroids, the narrowest signed int holding a discrete format's values."""
        return self.name

    def mac_operand_spec(self) -> MacOperand:
        """The element as a multiplier operand (:class:`MacOperand`, read by hwsim.cost.arith)."""
        from hwsim.errors import ConfigError

        raise ConfigError(f"no arithmetic model for format {self.name!r}: it is not a MAC operand")

    @property
    def integer_codes(self) -> bool:
        """True if values are ``scale * (integer code - zero_point)`` (integer formats): the
        integer kernels, requantization and ONNX integer types apply."""
        return False

    @property
    def can_accumulate(self) -> bool:
        """True if the format can hold a MAC accumulator (plain integer and float formats)."""
        return False

    def covers(self, other: "Format") -> float | None:
        """Excess bits if this (accumulator-capable) format holds every value of ``other``'s MAC
        operand exactly, else None. Used to run a pair a unit lacks on a wider one."""
        return 0.0 if other.name == self.name else None

    @property
    def codebook_entries(self) -> int:
        """Entries of a decoding table the format's codes index (VQ centroids), 0 if none."""
        return 0

    @property
    def side_bits_per_tensor(self) -> float:
        """Bits stored once per tensor beside the codes (a VQ codebook), 0 if none."""
        return 0.0

    @property
    def default_accumulators(self) -> tuple[str, ...]:
        """Accumulators a MAC of this format is compared with by default (``fx``: fixed point,
        product range + 12 bits)."""
        return ("fx",)

    @property
    def has_zero(self) -> bool:
        """True if 0 is always representable, so pruned (zeroed) weights stay zero when quantized.

        False for binary (+-1 only) and codebook formats (a fitted codebook need not hold 0).
        """
        return True

    @property
    def num_codes(self) -> int:
        """Number of distinct element codes, 2**bits."""
        return 1 << self.bits

    def __str__(self) -> str:
        return self.name

    # ---- numerics ---------------------------------------------------------------------------
    def _round(self, t, zero_point, rounding, saturate, rng):
        """Nearest representable value of unscaled ``t`` minus ``zero_point`` (float64)."""
        raise NotImplementedError(f"{self.name}: quantize is not implemented")

    def _to_codes(self, v, zero_point):
        """Codes of representable values ``v`` (the output of ``_round``)."""
        raise NotImplementedError(f"{self.name}: encode is not implemented")

    def _from_codes(self, codes, zero_point):
        """Representable values minus zero point (float64) of codes."""
        raise NotImplementedError(f"{self.name}: decode is not implemented")

    def _prepare(self, x, scale, zero_point, axis, group_size, rounding):
        check_rounding(rounding)
        x = np.asarray(x)
        if x.dtype.kind not in "fiub":
            raise InputDataError(f"{self.name}: expected a numeric array, got dtype {x.dtype}")
        if x.dtype.kind != "f":
            x = x.astype(np.float64)
        s = broadcast_param(scale, x, axis, group_size, "scale")
        zp = broadcast_param(zero_point, x, axis, group_size, "zero_point")
        if s is None:
            t = x
        else:  # numpy promotion: float32 x and float32 scale divide in float32, like ONNX
            t = x / (s if s.dtype.kind == "f" else s.astype(np.float64))
        return t, s, zp

    def quantize(self, x, scale=None, zero_point=None, axis=None, group_size=None,
                 rounding: str = "half_even", saturate: bool | None = None, seed=None) -> np.ndarray:
        """Round trip ``x`` through the format: dequantize(quantize(x)).

        Parameters
        ----------
        x : array_like
            Real values (any float dtype; ints are converted to float64).
        scale : float or array_like, optional
            Step size(s): scalar (per tensor), 1-D along ``axis`` (per channel), or one per group
            of ``group_size`` along ``axis``. ``x / scale`` is computed in the promoted dtype.
        zero_point : int or array_like, optional
            Integer offset(s) added after rounding (integer formats only), shaped like ``scale``.
        axis : int, optional
            Channel axis of per-channel / per-group parameters.
        group_size : int, optional
            Elements per group along ``axis``.
        rounding : str
            Rounding mode, default ``half_even``; see :func:`round_integer`.
        saturate : bool, optional
            Clamp overflow to the largest finite value; None -> the format's default.
        seed : int or numpy.random.Generator, optional
            Seed of stochastic rounding (deterministic for a given seed).

        Returns
        -------
        ndarray of float64
            ``(q - zero_point) * scale``.
        """
        t, s, zp = self._prepare(x, scale, zero_point, axis, group_size, rounding)
        v = self._round(t, zp, rounding, saturate, np.random.default_rng(seed))
        return v if s is None else v * s.astype(np.float64)

    def encode(self, x, scale=None, zero_point=None, axis=None, group_size=None,
               rounding: str = "half_even", saturate: bool | None = None, seed=None) -> np.ndarray:
        """Quantize ``x`` (same arguments as :meth:`quantize`) and return unsigned integer codes.

        Codes are uint8 for formats of up to 8 bits, uint16 up to 16, uint32 up to 32, else
        uint64; integer
        formats give the two's complement bit pattern of ``q`` (including the zero point).
        """
        t, s, zp = self._prepare(x, scale, zero_point, axis, group_size, rounding)
        v = self._round(t, zp, rounding, saturate, np.random.default_rng(seed))
        return self._to_codes(v, zp)

    def decode(self, codes, scale=None, zero_point=None, axis=None, group_size=None) -> np.ndarray:
        """Values (float64) of ``codes``: ``(value(code) - zero_point) * scale``."""
        codes = np.asarray(codes)
        if codes.dtype.kind not in "ui":
            raise InputDataError(f"{self.name}: codes must be an integer array, got {codes.dtype}")
        if np.any(codes < 0) or np.any(codes >= self.num_codes):
            raise InputDataError(f"{self.name}: codes must lie in [0, {self.num_codes})")
        s = broadcast_param(scale, codes, axis, group_size, "scale")
        zp = broadcast_param(zero_point, codes, axis, group_size, "zero_point")
        v = self._from_codes(codes.astype(np.int64), zp)
        return v if s is None else v * s.astype(np.float64)

    def code_dtype(self) -> np.dtype:
        """Smallest unsigned dtype holding one code."""
        for dt in (np.uint8, np.uint16, np.uint32):
            if self.bits <= 8 * np.dtype(dt).itemsize:
                return np.dtype(dt)
        return np.dtype(np.uint64)
