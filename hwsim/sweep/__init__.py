"""Design-space sweeps: models x hardware points x quantization on Dask, rows to Parquet.

:func:`load_spec` reads a SPEC, :func:`run_sweep` runs it (see :mod:`hwsim.sweep.run`).
"""

from hwsim.sweep.run import SweepResult, run_sweep
from hwsim.sweep.spec import SweepSpec, load_spec, parse_spec

__all__ = ["run_sweep", "SweepResult", "SweepSpec", "load_spec", "parse_spec"]
