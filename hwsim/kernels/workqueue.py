"""A dynamic split of parallel loops: threads claim work items from a shared counter.

numba's ``prange`` (the OpenMP layer here) gives each thread a fixed share of the iterations, so
on a machine where other processes hold the cores a parallel region lasts as long as the share of
its most delayed thread. A kernel here instead runs ``for _ in prange(threads)`` and each worker
takes items with :func:`claim` until none are left, so a thread that gets less CPU does fewer::

    for _ in prange(threads):
        while True:
            item = claim(counter)  # counter: np.zeros(1, np.int64), fresh per call
            if item >= items:
                break
            ...

Without JIT (NUMBA_DISABLE_JIT=1) ``claim`` is the plain Python below and the loop runs serially.
"""

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic, overload


def claim(counter):
    """``counter[0] += 1``, returning the value before (one atomic step in compiled code)."""
    v = counter[0]
    counter[0] = v + 1
    return v


@intrinsic
def _atomic_claim(typingctx, counter):
    sig = types.int64(counter)

    def codegen(context, builder, signature, args):
        arr = context.make_array(signature.args[0])(context, builder, args[0])
        return builder.atomic_rmw("add", arr.data, ir.Constant(ir.IntType(64), 1), "monotonic")

    return sig, codegen


@overload(claim)
def _claim_compiled(counter):
    return lambda counter: _atomic_claim(counter)


def split():
    """(counter, threads) for one call of a kernel that claims its work items."""
    return np.zeros(1, np.int64), numba.get_num_threads()
