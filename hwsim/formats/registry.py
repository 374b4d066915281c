"""Format names: parsing (:func:`get`), the bundled list (:func:`names`) and ONNX-like :func:`cast`."""

from __future__ import annotations

import functools
import re

import numpy as np

from hwsim.errors import ConfigError, UnknownFormatError
from hwsim.formats._base import Format
from hwsim.formats.block import BlockFormat
from hwsim.formats.discrete import BinaryFormat, Pow2Format, TernaryFormat
from hwsim.formats.e8m0 import E8M0Format
from hwsim.formats.floating import FloatFormat, policy_from_suffix
from hwsim.formats.integer import IntFormat
from hwsim.formats.nvfp4 import NVFP4Format
from hwsim.formats.signed_binary import SignedBinaryFormat
from hwsim.formats.vq import VQFormat

_BUNDLED = (
    "int8", "uint8", "int4", "uint4", "int2", "uint2", "int16", "uint16",
    "ternary", "binary", "signed_binary", "pow2_4", "pow2_3",
    "fp32", "fp16", "bf16", "fp8_e4m3fn", "fp8_e4m3fnuz", "fp8_e5m2", "fp8_e5m2fnuz",
    "fp6_e2m3fn", "fp6_e3m2fn", "fp4_e2m1fn",
    "mxfp8_e4m3", "mxfp8_e5m2", "mxfp6_e2m3", "mxfp6_e3m2", "mxfp4_e2m1", "mxint8",
    "vq_d2_b6", "vq_d2_b8", "vq_d4_b8",
    "nvfp4", "e8m0",
)
_FIXED = {
    "ternary": TernaryFormat, "binary": BinaryFormat, "signed_binary": SignedBinaryFormat,
    "fp32": lambda: FloatFormat(8, 23), "fp16": lambda: FloatFormat(5, 10),
    "bf16": lambda: FloatFormat(8, 7), "fp64": lambda: FloatFormat(11, 52),
    "nvfp4": NVFP4Format, "e8m0": E8M0Format,
}
_ALIASES = {"float32": "fp32", "float16": "fp16", "bfloat16": "bf16", "float64": "fp64",
            "half": "fp16", "float": "fp32", "double": "fp64",
            "float8_e8m0fnu": "e8m0", "float8_e8m0": "e8m0", "fp8_e8m0fnu": "e8m0", "float8e8m0": "e8m0"}
_HELP = ("valid names: intN (N=2..32), uintN (N=1..32), add _narrow for a symmetric signed range; "
         "ternary, binary, signed_binary, pow2_N (N=2..8); fp32, fp16, bf16, fp64; fpN_eXmY with "
         "N = 1+X+Y and optional suffix fn / fnuz (e.g. fp8_e4m3fn, fp8_e5m2, fp6_e2m3fn, "
         "fp4_e2m1fn, fp8_e3m4) and optional _bBIAS; the ml_dtypes spellings float8_e4m3fn etc.; "
         "MX: mxfp8_e4m3, mxfp8_e5m2, mxfp6_e2m3, mxfp6_e3m2, mxfp4_e2m1, mxint8 (optional _kBLOCK); "
         "VQ: vq_dD_bB (e.g. vq_d2_b8); NVIDIA's nvfp4; e8m0 (the MX scale type, float8_e8m0fnu)")

_INT = re.compile(r"(u?)int(\d+)(_narrow)?")
_POW2 = re.compile(r"pow2_(\d+)")
_FP = re.compile(r"(?:fp|float)(\d+)_e(\d+)m(\d+)(fnuz|fnnan|fin|fn)?(?:_b(-?\d+))?")
_MX = re.compile(r"mx(?:fp(\d+)_e(\d+)m(\d+)|int(\d+))(?:_k(\d+))?")
_VQ = re.compile(r"vq_d(\d+)_b(\d+)")


def _float(nbits: int, e: int, m: int, suffix: str | None, bias: str | None) -> FloatFormat:
    if nbits != 1 + e + m:
        raise UnknownFormatError(f"fp{nbits}_e{e}m{m}: bits must equal 1 + {e} + {m} = {1 + e + m}; "
                                 f"{_HELP}")
    policy = policy_from_suffix(suffix or "", nbits)
    return FloatFormat(e, m, None if bias is None else int(bias), policy)


def _parse(key: str) -> Format:
    if key in _FIXED:
        return _FIXED[key]()
    if mt := _INT.fullmatch(key):
        return IntFormat(int(mt[2]), signed=not mt[1], narrow_range=bool(mt[3]))
    if mt := _POW2.fullmatch(key):
        return Pow2Format(int(mt[1]))
    if mt := _FP.fullmatch(key):
        return _float(int(mt[1]), int(mt[2]), int(mt[3]), mt[4], mt[5])
    if mt := _MX.fullmatch(key):
        block = int(mt[5]) if mt[5] else 32
        if mt[4]:
            return BlockFormat(IntFormat(int(mt[4]), narrow_range=True), block)
        nbits, e, m = int(mt[1]), int(mt[2]), int(mt[3])
        policy = "fn" if (e, m) == (4, 3) else "ieee" if nbits >= 8 else "finite"
        return BlockFormat(_float(nbits, e, m, {"fn": "fn", "ieee": "", "finite": "fn"}[policy], None),
                           block)
    if mt := _VQ.fullmatch(key):
        return VQFormat(int(mt[1]), int(mt[2]))
    raise UnknownFormatError(f"unknown number format {key!r}; {_HELP}")


@functools.lru_cache(maxsize=512)
def _get_cached(key: str) -> Format:
    try:
        return _parse(key)
    except ConfigError as exc:  # parameters out of range
        raise UnknownFormatError(f"bad number format {key!r}: {exc}; {_HELP}") from exc


def get(name: str | Format) -> Format:
    """Parse a format name (case-insensitive) into a frozen :class:`Format`.

    Parameters
    ----------
    name : str or Format
        E.g. ``int8``, ``uint4``, ``fp8_e4m3fn``, ``float8_e5m2`` (ml_dtypes spelling),
        ``mxfp4_e2m1``, ``vq_d2_b8``. A Format is returned unchanged.

    Raises
    ------
    UnknownFormatError
        With the list of valid spellings.
    """
    hit = _BY_SPELLING.get(name) if type(name) is str else None
    if hit is not None:
        return hit
    if isinstance(name, Format):
        return name
    if not isinstance(name, str):
        raise UnknownFormatError(f"a format name must be a string, got {type(name).__name__}; {_HELP}")
    key = name.strip().lower().replace("-", "_")
    key = _ALIASES.get(key, key)
    fmt = _get_cached(key)
    if len(_BY_SPELLING) < 4096:
        _BY_SPELLING[name] = fmt
    return fmt


#: formats parsed before, by the exact spelling asked for (a simulate run asks for the formats of
#: its tensors hundreds of times: one dict lookup instead of normalising the spelling each time).
#: It sits in front of :func:`_get_cached`, not in its place: that cache is keyed by the normalised
#: name, so every spelling of one format ("INT8", "int8") gives the same object (tests rely on it)
_BY_SPELLING: dict[str, Format] = {}


def names() -> list[str]:
    """Canonical names of the bundled formats."""
    return list(_BUNDLED)


def cast(x, name: str | Format, saturate: bool = True, rounding: str = "half_even",
         via_float32: bool = False) -> np.ndarray:
    """Round float values to a float format (ONNX Cast semantics), returned as values.

    Parameters
    ----------
    x : array_like of float32 or float64
    name : str or FloatFormat
    saturate : bool
        ONNX Cast ``saturate`` (default 1): overflow and +-inf clamp to +-max; False gives inf
        (ieee) or NaN (fn, fnuz). As in ONNX it applies to formats of at most 8 bits only:
        fp16/bf16/fp32 overflow to +-inf. FP4/FP6 always saturate.
    rounding : str
        Default ``half_even`` (ONNX, ml_dtypes).
    via_float32 : bool
        Round float64 input to float32 first, like ml_dtypes ``astype`` (double rounding).

    Returns
    -------
    ndarray
        Same dtype as ``x`` (float32 or float64; all formats up to fp32 fit exactly).
    """
    fmt = get(name)
    if not isinstance(fmt, FloatFormat):
        raise ConfigError(f"cast() targets float formats; {fmt.name} is {fmt.kind}: use quantize()")
    x = np.asarray(x)
    dtype = x.dtype if x.dtype in (np.float32, np.float64) else np.dtype(np.float64)
    if via_float32:
        x = x.astype(np.float32)
    sat = bool(saturate) and fmt.bits <= 8
    return fmt.quantize(x, rounding=rounding, saturate=sat).astype(dtype)
