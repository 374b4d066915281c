"""Bit-accurate simulation of quantized graphs beside a float reference.

Public API: :func:`run` -> :class:`SimResult` (per-layer :class:`LayerError` with SQNR and MSE),
:class:`FloatCache` / :func:`float_reference` to reuse a reference, :func:`layer_output_error` for
cheap single-layer sensitivity, :func:`sqnr_db` / :func:`mse`, the pruning functions, and the
executor registry (:data:`EXECUTORS`, :func:`register_exec`).
"""

from hwsim.sim.metrics import mse, sqnr_db
from hwsim.sim.prune import apply_pruning, prune_channels, prune_nm, prune_unstructured
from hwsim.sim.registry import EXECUTORS, ExecContext, register_exec
from hwsim.sim.runner import FloatCache, LayerError, SimResult, float_reference, run
from hwsim.sim.layer_error import layer_output_error

__all__ = [
    "EXECUTORS", "ExecContext", "FloatCache", "LayerError", "SimResult",
    "apply_pruning", "float_reference", "layer_output_error", "mse", "prune_channels", "prune_nm", "prune_unstructured",
    "register_exec", "run", "sqnr_db",
]
