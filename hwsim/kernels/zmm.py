"""512-bit vectors for a numba kernel's loops where the host has AVX-512 F.

numba compiles for the host CPU, and LLVM's tuning for these Xeons prefers 256-bit vectors: a
float64 loop runs on four lanes. :func:`prefer_zmm`, called first in a kernel's body, sets the
kernel's LLVM function attributes ``prefer-vector-width`` and ``min-legal-vector-width`` to 512
where the host has AVX-512 F and numba compiles for the host (decided once, at import; numba's
cache keys a compiled kernel by the CPU and features it was compiled for), and does nothing
elsewhere (a plain function without JIT). The same operations on each element: a kernel's values
do not change, except the order of a ``reassoc`` reduction's additions, which follows the vector
width (the metrics' sums, :mod:`hwsim.kernels.errsum`).
"""

import numba
from llvmlite import binding as _llvm
from numba import types
from numba.extending import intrinsic


def zmm_host() -> bool:
    """Whether numba compiles for this host and it has AVX-512 F."""
    cpu = numba.config.CPU_NAME
    return (cpu is None or cpu == "host") and not numba.config.CPU_FEATURES \
        and bool(_llvm.get_host_cpu_features().get("avx512f", False))


ZMM = zmm_host()


@intrinsic
def prefer_zmm(typingctx):
    def codegen(context, builder, signature, args):
        if ZMM:
            attrs = builder.function.attributes
            set.add(attrs, '"prefer-vector-width"="512"')  # FunctionAttributes.add knows no string attributes
            set.add(attrs, '"min-legal-vector-width"="512"')
        return context.get_dummy_value()

    return types.none(), codegen


if numba.config.DISABLE_JIT:  # the kernels run as Python: nothing to ask of a compiler
    def prefer_zmm():
        return None
