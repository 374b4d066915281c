"""Number formats: frozen objects built from a few parameters, all constants derived.

Use :func:`get` to parse a name, :func:`names` for the bundled ones and :func:`cast` for ONNX-like
float casts. Every format has ``name, kind, bits, bits_per_element, is_float, signed, max, min``
and ``quantize`` (round trip, float64), ``encode`` (unsigned codes) and ``decode``.

Decisions, with the module that documents each:

- ``int1`` is rejected (a 1-bit two's complement holds {-1, 0}); use ``binary`` (+-1) or ``uint1``
  (:mod:`~hwsim.formats.integer`). Integer quantize is ONNX QuantizeLinear: round, add the zero
  point, saturate; codes are two's complement bit patterns.
- Floats round once from float64 (``cast(..., via_float32=True)`` reproduces ml_dtypes' double
  rounding), check overflow after rounding, and follow ml_dtypes/ONNX for inf/NaN; FP4/FP6 map
  NaN to a zero of inverted sign like ml_dtypes, which the ONNX reference evaluator uses
  (:mod:`~hwsim.formats.floating`).
- MX shared exponents use ``np.frexp``; integer MX elements are fixed point with 2^-(bits-2)
  steps and a symmetric range (:mod:`~hwsim.formats.block`).
- ``pow2_N``: sign bit + (N-1)-bit exponent code, code 0 is the value 0, magnitudes
  2^-(2^(N-1)-2) .. 1 (:mod:`~hwsim.formats.discrete`).
- ``signed_binary``: region = index of ``axis`` (default 0), region sign = sign of its sum
  (:mod:`~hwsim.formats.signed_binary`).
- ``vq_dD_bB``: ``bits_per_element = B / D`` excludes the codebook; quantize fits a seeded
  k-means codebook per tensor (:mod:`~hwsim.formats.vq`).
- Rounding modes: ``half_even`` (default), ``half_away``, ``half_up``, ``toward_zero``,
  ``stochastic`` (seeded with ``seed``) (:func:`hwsim.formats._base.round_integer`).
"""

from hwsim.formats._base import ROUNDING_MODES, Format, MacOperand
from hwsim.formats.block import BlockFormat
from hwsim.formats.discrete import BinaryFormat, Pow2Format, TernaryFormat
from hwsim.formats.floating import FloatFormat
from hwsim.formats.integer import IntFormat
from hwsim.formats.registry import cast, get, names
from hwsim.formats.signed_binary import SignedBinaryFormat
from hwsim.formats.vq import VQFormat

__all__ = [
    "ROUNDING_MODES", "BinaryFormat", "BlockFormat", "FloatFormat", "Format", "IntFormat",
    "MacOperand", "Pow2Format", "SignedBinaryFormat", "TernaryFormat", "VQFormat", "cast", "get", "names",
]
