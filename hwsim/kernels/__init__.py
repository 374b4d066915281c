"""numba kernels (leaf package: imports numpy and numba, never hwsim).

Importing it sets ``OMP_WAIT_POLICY=PASSIVE`` unless the environment names a policy already
(:func:`quiet_idle_workers`): the OpenMP threads of numba's parallel kernels then sleep between
kernels instead of spinning on a core.
"""

import os

#: the OpenMP wait policy set when the environment names none (``os.environ.setdefault``)
WAIT_POLICY = "PASSIVE"


def quiet_idle_workers() -> None:
    """Let numba's OpenMP workers sleep between parallel regions (``OMP_WAIT_POLICY=PASSIVE``)
    unless the user chose a policy. The OpenMP runtime reads it once, when numba first loads it
    (its first parallel kernel), so this runs on import of this package, before any kernel.

    GNU OpenMP's default lets an idle worker spin for 300,000 iterations (milliseconds) after each
    parallel region; a simulate calls a few hundred parallel kernels, and the spinning worker holds
    a core that the float reference's thread beside the quantized run, BLAS, or another process
    wants. Measured on BERT-s128 QDQ (benchmarks/bench_sim.py --qdq model, 2 cores, 2026-11-26,
    load 7-10, kernels on 2 threads as on an idle machine): default mode 0.61-0.87 -> 0.43-0.52 s
    CPU, ``--no-reference`` 0.31-0.37 -> 0.16-0.21 s CPU; ResNet-18 b8 ``--no-reference``
    0.52 -> 0.32, MobileNetV2 0.33 -> 0.19 s CPU (benchmarks/RESULTS.md, "Sixth session:
    simbert"). A policy already in the environment is kept (``ACTIVE`` for a machine of one's own)."""
    os.environ.setdefault("OMP_WAIT_POLICY", WAIT_POLICY)


quiet_idle_workers()
