"""Signed binarization (Kuhar et al., arXiv 2312.01581): {0, +1} in some regions, {0, -1} in others."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwsim.errors import ConfigError, InputDataError
from hwsim.formats._base import Format, broadcast_param
from hwsim.formats.discrete import SignWeights


@dataclass(frozen=True)
class SignedBinaryFormat(SignWeights, Format):
    """1-bit codes (0 -> 0, 1 -> the region's sign) plus one sign per region.

    A region is a slice along ``axis`` (0, the output channel of a weight, when None). The sign of a
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

    def region_signs(self, x, axis: int = 0) -> np.ndarray:
        """Sign (+1.0 / -1.0) of each region: the sign of the sum of its values (0 -> +1).

        A region is one index of ``axis`` (the output channel of a weight by default); a 0-d
        input is one region.
        """
        x = np.asarray(x, dtype=np.float64)
        if x.ndim == 0:
            return np.where(x >= 0, 1.0, -1.0).reshape(1)
        ax = (0 if axis is None else axis) % x.ndim
        sums = x.sum(axis=tuple(i for i in range(x.ndim) if i != ax))
        return np.where(sums >= 0, 1.0, -1.0)

    def _signs_like(self, signs, x, axis):
        shape = [1] * x.ndim
        if x.ndim:
            shape[(0 if axis is None else axis) % x.ndim] = -1
        return np.asarray(signs, dtype=np.float64).reshape(shape) if x.ndim else np.asarray(signs)[0]

    def encode(self, x, scale=None, zero_point=None, axis: int = 0, group_size=None,
               rounding: str = "half_even", saturate: bool | None = None, seed=None):
        """Element bits and region signs.

        Returns
        -------
        codes : ndarray of uint8
            1 where the element is non-zero (equal to its region's sign times ``scale``).
        signs : ndarray of int8
            +1 / -1 per region (one per index of ``axis``).
        """
        if zero_point is not None:
            raise ConfigError("signed_binary takes no zero_point")
        x = np.asarray(x, dtype=np.float64)
        if np.isnan(x).any():
            raise InputDataError("cannot quantize NaN to signed_binary")
        signs = self.region_signs(x, axis)
        t, _, _ = self._prepare(x, scale, None, axis, group_size, rounding)
        from hwsim.formats.discrete import round_to_table  # local: avoids an import cycle

        r = round_to_table(t * self._signs_like(signs, x, axis), np.array([0.0, 1.0]), rounding,
                           np.random.default_rng(seed))
        return r.astype(np.uint8), signs.astype(np.int8)

    def decode(self, codes, signs=None, scale=None, zero_point=None, axis: int = 0,
               group_size=None) -> np.ndarray:
        """Values (float64): ``codes * sign(region) * scale``; ``signs`` is required."""
        if signs is None:
            raise ConfigError("signed_binary decode needs the region signs (2nd output of encode)")
        codes = np.asarray(codes)
        if codes.dtype.kind not in "ui" or np.any(codes > 1):
            raise InputDataError("signed_binary codes must be 0 or 1")
        v = codes * self._signs_like(signs, codes, axis) + 0.0  # no -0
        s = broadcast_param(scale, codes, axis, group_size, "scale")
        return v if s is None else v * s.astype(np.float64)

    def quantize(self, x, scale=None, zero_point=None, axis: int = 0, group_size=None,
                 rounding: str = "half_even", saturate: bool | None = None, seed=None):
        """Round trip: each element becomes 0 or sign(region) * scale (see the class docs)."""
        codes, signs = self.encode(x, scale, zero_point, axis, group_size, rounding, saturate, seed)
        return self.decode(codes, signs, scale, None, axis, group_size)
