"""Number formats: frozen objects built from a few parameters, all constants derived.

Use :func:`get` to parse a name, :func:`names` for the bundled ones and :func:`cast` for ONNX-like
float casts. Every format has ``quantize``, ``encode`` and ``decode``.
"""

from hwsim.formats._base import ROUNDING_MODES, Format
from hwsim.formats.block import BlockFormat
from hwsim.formats.discrete import BinaryFormat, Pow2Format, TernaryFormat
from hwsim.formats.floating import FloatFormat
from hwsim.formats.integer import IntFormat
from hwsim.formats.registry import cast, get, names
from hwsim.formats.signed_binary import SignedBinaryFormat
from hwsim.formats.vq import VQFormat

__all__ = [
    "ROUNDING_MODES", "BinaryFormat", "BlockFormat", "FloatFormat", "Format", "IntFormat",
    "Pow2Format", "SignedBinaryFormat", "TernaryFormat", "VQFormat", "cast", "get", "names",
]
