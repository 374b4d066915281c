"""hwsim: what a quantized neural network costs on real hardware, bit-accurately simulated.

Public API (each also a CLI command):

- :func:`load_model` / :func:`quantize_graph` / :func:`summarize` -- the IR (``hwsim summary``)
- :func:`estimate` -- latency and energy per layer on a hardware target (``hwsim estimate``)
- :func:`simulate` (= :func:`hwsim.sim.run`) -- bit-accurate simulation (``hwsim simulate``)
- :mod:`solve` -- per-layer formats and pruning under hardware budgets: ``hwsim.solve.solve(...)``
  (``hwsim solve``)
"""

import importlib

__version__ = "0.1.0"

#: Imported on first use, so ``import hwsim`` (and every CLI call, which imports
#: :mod:`hwsim.errors`) does not pay for networkx, pydantic, numba, the cost model and the solver:
#: name -> (module, attribute or None for the module itself). ``hwsim.solve`` is the package; its
#: entry point is :func:`hwsim.solve.solve`.
_LAZY = {"QuantConfig": ("hwsim.graph.annotate", "QuantConfig"),
         "quantize_graph": ("hwsim.graph.annotate", "quantize_graph"),
         "Graph": ("hwsim.graph.ir", "Graph"), "Tensor": ("hwsim.graph.ir", "Tensor"),
         "summarize": ("hwsim.graph.summary", "summarize"), "load_model": ("hwsim.graph.zoo", "load_model"),
         "estimate": ("hwsim.cost.estimate", "estimate"), "simulate": ("hwsim.sim", "run"),
         "solve": ("hwsim.solve", None)}


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'hwsim' has no attribute {name!r}")
    module, attr = _LAZY[name]
    mod = importlib.import_module(module)
    value = mod if attr is None else getattr(mod, attr)
    globals()[name] = value
    return value

__all__ = ["Graph", "Tensor", "QuantConfig", "estimate", "load_model", "quantize_graph", "simulate", "solve", "summarize"]
