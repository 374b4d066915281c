"""hwsim: what a quantized neural network costs on real hardware, bit-accurately simulated.

Public API (each also a CLI command):

- :func:`load_model` / :func:`quantize_graph` / :func:`summarize` -- the IR (``hwsim summary``)
- :func:`estimate` -- latency and energy per layer on a hardware target (``hwsim estimate``)
- :func:`simulate` (= :func:`hwsim.sim.run`) -- bit-accurate simulation (``hwsim simulate``)
- :func:`solve` -- per-layer formats and pruning under hardware budgets (``hwsim solve``)
"""

from hwsim.graph.annotate import QuantConfig, quantize_graph
from hwsim.graph.ir import Graph, Tensor
from hwsim.graph.summary import summarize
from hwsim.graph.zoo import load_model
from hwsim.cost.estimate import estimate
from hwsim.sim import run as simulate
from hwsim import solve  # the package; calling it runs hwsim.solve.solve (see hwsim/solve/__init__.py)

__version__ = "0.1.0"

__all__ = ["Graph", "Tensor", "QuantConfig", "estimate", "load_model", "quantize_graph", "simulate", "solve", "summarize"]
