"""Vector quantization (GPTVQ-style codebooks): D-dim vectors replaced by one of 2^B centroids."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwsim.errors import ConfigError, InputDataError
from hwsim.formats._base import Format, MacOperand


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
    def has_zero(self) -> bool:
        return False

    @property
    def kind(self) -> str:
        return "vq"

    def mac_operand_spec(self) -> MacOperand:
        return MacOperand("int", 8, 0, True)

    @property
    def codebook_entries(self) -> int:
        return self.num_centroids

    @property
    def side_bits_per_tensor(self) -> float:
        return float(self.codebook_bits())

    @property
    def scale_rule(self) -> str:
        return "none"  # the fitted codebook holds real values

    @property
    def mac_operand(self) -> str:
        return "int8"  # decoded centroids enter the MAC as int8 (hwsim.cost.arith)

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

    # ---- numerics ----------------------------------------------------------------------------
    def _vectors(self, x):
        x = np.asarray(x, dtype=np.float64)
        if x.ndim == 0 or x.shape[-1] % self.dim:
            raise InputDataError(f"{self.name}: the last axis ({x.shape[-1:]}) must be a multiple "
                                 f"of the vector dimension {self.dim}")
        if np.isnan(x).any():
            raise InputDataError(f"{self.name}: cannot quantize NaN")
        return x.reshape(-1, self.dim)

    def assign(self, vectors, codebook) -> np.ndarray:
        """Index of the nearest centroid (squared Euclidean; ties -> lowest index) per vector.

        ``vectors`` is (N, dim), ``codebook`` (K, dim); returns int64 (N,).
        """
        v = np.ascontiguousarray(vectors, dtype=np.float64)
        cb = np.ascontiguousarray(codebook, dtype=np.float64)
        if v.ndim != 2 or cb.ndim != 2 or v.shape[1] != self.dim or cb.shape[1] != self.dim:
            raise InputDataError(f"{self.name}: vectors and codebook must be 2-D with {self.dim} "
                                 f"columns, got {v.shape} and {cb.shape}")
        from hwsim.formats._kernels import _nearest_centroid  # numba: imported on first use

        return _nearest_centroid(v, cb)

    def fit(self, x, seed=0, iterations: int = 8, max_fit_vectors: int = 1 << 16) -> np.ndarray:
        """Seeded k-means codebook (numpy only, deterministic) of D-dim vectors of ``x``.

        Vectors are consecutive groups of ``dim`` values along the last axis. With more than
        ``max_fit_vectors`` vectors, the codebook is fitted on a seeded random subset of that
        many (all vectors are still assigned). Initial centroids are distinct data vectors drawn
        with ``numpy.random.default_rng(seed)``; then ``iterations`` Lloyd steps (empty clusters
        keep their centroid). Fewer distinct vectors than centroids give a codebook padded by
        repeating them.

        Returns
        -------
        ndarray of float64, shape (2^index_bits, dim)
        """
        v = self._vectors(x)
        rng = np.random.default_rng(seed)
        if len(v) > max_fit_vectors:
            v = v[np.sort(rng.choice(len(v), size=max_fit_vectors, replace=False))]
        uniq = np.unique(v, axis=0)
        k = self.num_centroids
        pick = rng.choice(len(uniq), size=min(k, len(uniq)), replace=False)
        cb = uniq[np.resize(np.sort(pick), k)]
        for _ in range(iterations):
            idx = self.assign(v, cb)
            counts = np.bincount(idx, minlength=k)
            sums = np.stack([np.bincount(idx, weights=v[:, d], minlength=k)
                             for d in range(self.dim)], axis=1)
            cb = np.where(counts[:, None] > 0, sums / np.maximum(counts, 1)[:, None], cb)
        return cb

    def encode(self, x, scale=None, zero_point=None, axis=None, group_size=None,
               rounding: str = "half_even", saturate: bool | None = None, seed=None,
               codebook=None):
        """Indices and codebook.

        Returns
        -------
        codes : ndarray of uint8/uint16
            Centroid index per vector, shape ``x.shape[:-1] + (x.shape[-1] // dim,)``.
        codebook : ndarray of float64, shape (2^index_bits, dim)
            ``codebook`` if given, else :meth:`fit` with ``seed`` (None -> 0). ``scale`` (scalar)
            divides ``x`` first and multiplies the codebook back.
        """
        if zero_point is not None or group_size is not None:
            raise ConfigError(f"{self.name}: takes no zero_point or group_size")
        x = np.asarray(x, dtype=np.float64)
        s = 1.0 if scale is None else float(scale)
        cb = self.fit(x / s, 0 if seed is None else seed) if codebook is None else \
            np.asarray(codebook, dtype=np.float64) / s
        idx = self.assign(self._vectors(x / s), cb)
        return idx.reshape(x.shape[:-1] + (-1,)).astype(self.code_dtype()), cb * s

    def decode(self, codes, codebook=None, zero_point=None, axis=None, group_size=None):
        """Reconstruction: ``codebook[codes]`` with the vectors laid back along the last axis."""
        if codebook is None:
            raise ConfigError(f"{self.name}: decode needs the codebook (2nd output of encode)")
        codes = np.asarray(codes)
        cb = np.asarray(codebook, dtype=np.float64)
        return cb[codes].reshape(codes.shape[:-1] + (-1,))

    def quantize(self, x, scale=None, zero_point=None, axis=None, group_size=None,
                 rounding: str = "half_even", saturate: bool | None = None, seed=None):
        """Fit a codebook (:meth:`fit`) and return the reconstruction of ``x`` (float64).

        ``rounding`` and ``saturate`` do not apply (nearest centroid).
        """
        codes, cb = self.encode(x, scale, zero_point, axis, group_size, rounding, saturate, seed)
        return self.decode(codes, cb)
