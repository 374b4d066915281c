"""hwsim.kernels sets the OpenMP wait policy before numba's OpenMP runtime loads, unless the
environment names one (hwsim.kernels.quiet_idle_workers)."""

import os
import subprocess
import sys

import hwsim.kernels

_PROBE = ("import os, hwsim.kernels; from hwsim.sim import refblas; refblas.concurrent_kernels_safe(); "
          "print(os.environ.get('OMP_WAIT_POLICY'))")


def _policy_in_child(env_policy):
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if env_policy is not None:
        env["OMP_WAIT_POLICY"] = env_policy
    out = subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_passive_unless_the_environment_names_a_policy():
    assert _policy_in_child(None) == hwsim.kernels.WAIT_POLICY == "PASSIVE"
    assert _policy_in_child("ACTIVE") == "ACTIVE"


def test_set_before_numba_loads_its_openmp_runtime():
    """The policy is in the environment the runtime reads: the package sets it on import, and
    the first parallel launch (refblas.concurrent_kernels_safe) imports the package first."""
    code = ("import os, sys; from hwsim.sim import refblas; "
            "assert 'numba.np.ufunc.omppool' not in sys.modules; "
            "refblas.concurrent_kernels_safe(); print(os.environ.get('OMP_WAIT_POLICY'))")
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "PASSIVE"
