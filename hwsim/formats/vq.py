"""Vector quantization (GPTVQ-style codebooks): D-dim vectors replaced by one of 2^B centroids."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwsim.errors import ConfigError
from hwsim.formats._base import Format


@dataclass(frozen=True)
class VQFormat(Format):
    """Codebook of 2^``index_bits`` centroids of ``dim`` dimensions.

    ``bits`` is the index width (one code per vector of ``dim`` weights) and ``bits_per_element``
    is ``index_bits / dim``, EXCLUDING the codebook (2^B * D values of the codebook's own format,
    amortised over the tensor or group it serves; see :meth:`codebook_bits`).
    """

    dim: int
    index_bits: int

    def __post_init__(self):
        if not isinstance(self.dim, (int, np.integer)) or not 1 <= self.dim <= 64:
            raise ConfigError(f"vq dim must be in [1, 64], got {self.dim!r}")
        if not isinstance(self.index_bits, (int, np.integer)) or not 1 <= self.index_bits <= 16:
            raise ConfigError(f"vq index_bits must be in [1, 16], got {self.index_bits!r}")

    @property
    def name(self) -> str:
        return f"vq_d{self.dim}_b{self.index_bits}"

    @property
    def kind(self) -> str:
        return "vq"

    @property
    def bits(self) -> int:
        return self.index_bits

    @property
    def bits_per_element(self) -> float:
        return self.index_bits / self.dim

    @property
    def signed(self) -> bool:
        return True

    @property
    def max(self) -> float:
        """No fixed range: centroids are fitted to the data (inf)."""
        return float("inf")

    @property
    def num_centroids(self) -> int:
        """Codebook entries, 2^index_bits."""
        return 1 << self.index_bits

    def codebook_bits(self, centroid_bits: int = 16) -> int:
        """Storage of one codebook in bits: 2^B * D * ``centroid_bits`` (fp16 centroids default)."""
        return self.num_centroids * self.dim * centroid_bits
