"""The kernels of simulate's quantized run and of its float reference release the GIL: the
reference runs on a Python thread beside the quantized run (hwsim.sim.runner._ReferenceBeside),
and a kernel holding the GIL stops the other thread's Python (its numpy calls, its next op)
for the kernel's whole duration."""

import numba
import pytest
from numba import njit

from hwsim.kernels import biasround, codelut, codesums, errsum, quantize, refadd, referf, requant, simdgemm, workqueue

pytestmark = pytest.mark.skipif(numba.config.DISABLE_JIT, reason="compiled kernels only")

_BESIDE = [simdgemm._gemm, simdgemm._gemm_1, simdgemm._pack_b, errsum._coded_sums, errsum._biased_coded_sums,
           quantize._codes_f32, quantize._codes_f64, quantize._real_f32, quantize._real_f64,
           requant._requant_ort, requant._requant_ort_1, biasround._add_bias_f32, refadd._add_biased,
           refadd._add_biased_1, codelut._lookup1, codelut._lookup2, codesums._k_sums, referf._erf]


@pytest.mark.parametrize("kernel", _BESIDE, ids=lambda k: getattr(k, "py_func", k).__qualname__)  # no py_func without JIT
def test_kernels_beside_the_reference_release_the_gil(kernel):
    assert kernel.targetoptions.get("nogil") is True


def test_serial_twin_keeps_nogil():
    def f(x):
        return x + 1

    assert workqueue.serial(njit(nogil=True)(f)).targetoptions.get("nogil") is True
    assert not workqueue.serial(njit(f)).targetoptions.get("nogil")


def _dispatchers():
    import importlib
    import pkgutil

    from numba.core.registry import CPUDispatcher

    import hwsim.formats._kernels
    import hwsim.kernels

    mods = [importlib.import_module(f"hwsim.kernels.{m.name}") for m in pkgutil.iter_modules(hwsim.kernels.__path__)]
    for mod in mods + [hwsim.formats._kernels]:
        for name, obj in vars(mod).items():
            if isinstance(obj, CPUDispatcher) and obj.py_func.__module__ == mod.__name__:
                yield f"{mod.__name__}.{name}", obj


def test_every_kernel_releases_the_gil():
    """Also solve's threads: its candidate plans (and sensitivity layers) run on two Python threads
    at once, one numba thread each (the serial twins), and a kernel holding the GIL makes the
    other plan's kernels wait for it."""
    held = [name for name, d in _dispatchers() if not d.targetoptions.get("nogil")]
    assert not held, f"kernels holding the GIL (add nogil=True): {held}"
