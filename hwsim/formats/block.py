"""OCP Microscaling (MX v1.0) block formats: blocks of 32 elements sharing an E8M0 scale."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwsim.errors import ConfigError
from hwsim.formats._base import Format
from hwsim.formats.floating import FloatFormat
from hwsim.formats.integer import IntFormat


@dataclass(frozen=True)
class BlockFormat(Format):
    """``block_size`` elements of ``element`` format sharing one power-of-two scale.

    Parameters
    ----------
    element : FloatFormat or IntFormat
        Element format. An integer element is a fixed-point number with ``bits - 2`` fraction
        bits (MXINT8: two's complement with implicit scale 2^-6, symmetric range +-1.984375).
    block_size : int
        Elements per block (OCP MX: 32).
    scale_bits : int
        Bits of the shared E8M0 scale (8: exponents -127..127, code 0xFF is NaN).
    """

    element: Format
    block_size: int = 32
    scale_bits: int = 8

    def __post_init__(self):
        if not isinstance(self.element, (FloatFormat, IntFormat)):
            raise ConfigError("MX block elements must be a float or signed int format")
        if isinstance(self.element, IntFormat) and not self.element.signed:
            raise ConfigError("MX integer elements must be signed")
        if self.block_size < 1 or self.scale_bits < 2:
            raise ConfigError("block_size must be >= 1 and scale_bits >= 2")

    @property
    def name(self) -> str:
        el = self.element
        base = f"mxint{el.bits}" if isinstance(el, IntFormat) else \
            f"mxfp{el.bits}_e{el.exponent_bits}m{el.mantissa_bits}"
        extra = "" if self.block_size == 32 else f"_k{self.block_size}"
        return base + extra + ("" if self.scale_bits == 8 else f"_s{self.scale_bits}")

    @property
    def kind(self) -> str:
        return "block"

    @property
    def bits(self) -> int:
        return self.element.bits

    @property
    def bits_per_element(self) -> float:
        return self.element.bits + self.scale_bits / self.block_size

    @property
    def is_float(self) -> bool:
        return self.element.is_float

    @property
    def signed(self) -> bool:
        return True

    @property
    def element_emax(self) -> int:
        """Exponent of the largest power of two of the element format (OCP ``emax_elem``)."""
        if isinstance(self.element, FloatFormat):
            return self.element.emax
        return 0

    @property
    def element_unit(self) -> float:
        """Value of one integer-element step: 2^-(bits-2) (1 for float elements)."""
        return float(np.ldexp(1.0, 2 - self.element.bits)) if isinstance(self.element, IntFormat) else 1.0

    @property
    def max(self) -> float:
        """Largest element magnitude before the shared scale (mxfp4_e2m1 -> 6, mxint8 -> 1.984375)."""
        return self.element.max * self.element_unit

    @property
    def scale_emin(self) -> int:
        """Smallest shared exponent, -(2^(scale_bits-1) - 1) (E8M0: -127)."""
        return -((1 << (self.scale_bits - 1)) - 1)

    @property
    def scale_emax(self) -> int:
        """Largest shared exponent, 2^(scale_bits-1) - 1 (E8M0: 127)."""
        return (1 << (self.scale_bits - 1)) - 1
