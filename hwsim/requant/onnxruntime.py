"""``onnxruntime``: MLAS ``MlasRequantizeOutput`` (onnxruntime's QLinear kernels).

``float32(acc) * float32(m)`` clamped to ``[lo - zp, hi - zp]``, rounded half to even, plus ``zp``;
the multiplier is computed in float32.
"""

import numpy as np

from hwsim.requant import RequantMode, register


def _apply(acc3, m, zp, lo, hi):
    from hwsim.kernels import requant as _rq  # numba loads on first use, not at CLI start-up

    return _rq.requant_float(acc3, m, zp, lo, hi, True)


MODE = register(RequantMode(
    name="onnxruntime", description="onnxruntime MLAS MlasRequantizeOutput: float32 product, half-even",
    multiplier_dtype=np.float32, int32_registers=False,
    apply=_apply, in_gemm_epilogue=True))
