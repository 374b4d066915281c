"""Requantization modes: how an integer accumulator becomes an 8/16/32-bit output code.

Each mode is one file in this package that builds a :class:`RequantMode` and calls
:func:`register`; the list of bundled modes is the import line at the bottom of this file (no
path scanning). The simulator (:mod:`hwsim.sim.compute`), the kernel API
(:func:`hwsim.kernel_api.requantize`) and the CLI choices all read this registry.

To add a mode: write ``hwsim/requant/NAME.py`` (copy ``exact.py``), add its import below.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from hwsim.errors import ConfigError, InputDataError


@dataclass(frozen=True)
class RequantMode:
    """One requantization rule, reproducing one library.

    Attributes
    ----------
    name : str
        Spelling used by ``requant=`` and ``--requant``.
    description : str
        What it reproduces, with the source.
    multiplier_dtype : numpy dtype or None
        Arithmetic of the multiplier ``s_in * s_w / s_out`` (None: numpy's promotion of the scales).
    int32_registers : bool
        The library holds the accumulator in int32: the simulator wraps it to 32 bits first.
    apply : callable
        ``apply(acc3, mults, zp, lo, hi) -> int64 array``: ``acc3`` is int64 (outer, C, inner),
        ``mults`` float64 (C,) already in ``multiplier_dtype``, ``zp`` int64 (C,).
    in_gemm_epilogue : bool
        The integer GEMM computes this rule in its epilogue, from the registers, into 8-bit
        codes (:func:`hwsim.kernel_api.qgemm_codes`), and the depthwise kernel in its own pass
        (:func:`hwsim.kernel_api.qdepthwise_codes`); the same values as ``apply``.
    """

    name: str
    description: str
    multiplier_dtype: type | None
    int32_registers: bool
    apply: Callable[..., np.ndarray]
    in_gemm_epilogue: bool = False

    def multiplier(self, s_in, s_w, s_out) -> np.ndarray:
        """``s_in * s_w / s_out`` in the arithmetic of the reproduced library."""
        scales = [np.asarray(s) for s in (s_in, s_w, s_out)]
        for s in scales:
            if s.dtype.kind != "f":
                raise InputDataError(f"scales must be float arrays, got {s.dtype}")
        dt = self.multiplier_dtype or np.result_type(*scales)
        a, b, c = (s.astype(dt) for s in scales)
        return np.asarray(a * b / c)


_MODES: dict[str, RequantMode] = {}


def register(mode: RequantMode) -> RequantMode:
    """Add a mode to the registry (called once by each mode's file)."""
    if mode.name in _MODES:
        raise ValueError(f"requant mode {mode.name!r} registered twice")
    _MODES[mode.name] = mode
    return mode


def names() -> tuple[str, ...]:
    """Registered mode names, in registration order."""
    return tuple(_MODES)


def get(name: str) -> RequantMode:
    """The mode called ``name``; :class:`ConfigError` naming the valid ones otherwise."""
    if name not in _MODES:
        raise ConfigError(f"unknown requant mode {name!r}; use one of {', '.join(_MODES)}")
    return _MODES[name]


from hwsim.requant import exact, onnxruntime, gemmlowp, tflite  # noqa: E402,F401  (the bundled modes)
