"""``exact``: the ONNX reference evaluator (QLinearMatMul / QLinearConv).

``rint(float64(acc) * float64(m) + zp)`` rounded half to even, then clipped; the multiplier is
computed in the scales' own dtype (numpy promotion), as the evaluator does.
"""

from hwsim.requant import RequantMode, register


def _apply(acc3, m, zp, lo, hi):
    from hwsim.kernels import requant as _rq  # numba loads on first use, not at CLI start-up

    return _rq.requant_float(acc3, m, zp, lo, hi, False)


MODE = register(RequantMode(
    name="exact", description="ONNX reference evaluator: float64 product, half-even rounding",
    multiplier_dtype=None, int32_registers=False,
    apply=_apply))
