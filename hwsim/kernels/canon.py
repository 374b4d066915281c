"""Canonical argument types for the numba kernels: one compiled signature serves every caller.

numba compiles a kernel once per signature, and a signature holds each array's dtype, layout and
whether it is read-only. With an empty numba cache (a fresh install, CI) every signature costs
0.3-2.5 s of compiling (2026-11-26, `solve resnet18` compiled `_im2col_nhwc` six times: 14.8 s of
its 55 s of CPU). A wrapper therefore passes an input array the kernel only reads as
:func:`readonly`, and to a kernel that only copies elements :func:`as_bits`.
"""

import numpy as np


def readonly(x: np.ndarray) -> np.ndarray:
    """A read-only view of ``x`` (no copy): inputs typed alike whether the caller's array is
    writable or not."""
    v = x.view()
    v.flags.writeable = False
    return v


def as_bits(x: np.ndarray) -> np.ndarray:
    """``x`` viewed as unsigned integers of its item size (no copy), for kernels that only copy
    elements: int8 and uint8 (or float32 and int32) share one compiled kernel."""
    return x.view(f"u{x.dtype.itemsize}")
