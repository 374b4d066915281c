"""Signed binarization (Kuhar et al., arXiv 2312.01581): {0, +1} in some regions, {0, -1} in others."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwsim.errors import ConfigError, InputDataError
from hwsim.formats._base import Format


@dataclass(frozen=True)
class SignedBinaryFormat(Format):
    """1-bit codes (0 -> 0, 1 -> the region's sign) plus one sign per region.

    A region is a slice along ``axis`` (default 0, the output channel of a weight). The sign of a
    region is that of the sum of its values (sum >= 0 -> +1); an element is non-zero when
    ``x * sign / scale >= 1/2`` (rounding ties per the rounding mode). The region signs cost one
    bit per region, not counted in ``bits_per_element`` (1.0).
    """

    @property
    def name(self) -> str:
        return "signed_binary"

    @property
    def kind(self) -> str:
        return "signed_binary"

    @property
    def bits(self) -> int:
        return 1

    @property
    def signed(self) -> bool:
        return True

    @property
    def max(self) -> float:
        return 1.0
