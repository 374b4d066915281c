"""The part of a graph from one layer onward, fed with float reference values at its boundary.

Perturbing one layer only changes the ops downstream of it, so sensitivity simulates only those:
the tail graph holds the layer and its descendants; every activation they read from outside the
tail becomes a graph input carrying its float reference value. Weights are shared, not copied.
:func:`subgraph` cuts any set of ops the same way (the layer alone, or only its descendants).
"""

from __future__ import annotations

from contextlib import nullcontext

import networkx as nx
import numpy as np

from hwsim.graph.ir import Graph, Tensor
from hwsim.graph.quant import FP32, NO_PRUNING
from hwsim.sim.refblas import one_blas_thread
from hwsim.solve import tail_tf
from hwsim.solve.tail_cnn import ChannelsLast

_FROM_OUTSIDE = ("input", "activation")  # KV caches stay kv_cache tensors, fed by name


def tail_graph(graph: Graph, layer: str) -> Graph:
    """Graph of ``layer`` and every op downstream of it (float boundary inputs, see module doc)."""
    return subgraph(graph, {layer} | nx.descendants(graph.nx, layer), f"{graph.name}[{layer}:]")


def subgraph(graph: Graph, keep: set[str], title: str) -> Graph:
    """Graph of the ops in ``keep`` (graph order); what they read from outside becomes an input
    (float activations as float32 inputs, see module doc); its outputs are the graph outputs
    they produce."""
    ops = [o for o in graph.ops() if o.name in keep]
    produced = {t for o in ops for t in o.outputs}
    g = Graph(title)
    g.notes = list(graph.notes)
    for op in ops:
        for name in op.inputs:
            if name in g.tensors:
                continue
            t = graph.tensors[name]
            if name not in produced and t.role in _FROM_OUTSIDE and not t.dtype.startswith(("int", "uint", "bool")):
                g.add_tensor(Tensor(name, t.shape, "input", FP32, dtype="float32"))
            elif name not in produced:
                g.add_tensor(t)
    for op in ops:
        g.add_op(op)
    g.outputs = [o for o in graph.outputs if o in produced]
    return g


def boundary_names(tail: Graph, reference: dict[str, np.ndarray]) -> list[str]:
    """Names of a tail graph's inputs and of the KV caches it reads (fed by name)."""
    return list(tail.inputs) + [n for n, t in tail.tensors.items() if t.role == "kv_cache" and n in reference]


def boundary_values(tail: Graph, reference: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Input arrays of a tail graph (and its KV caches): float reference values, as float32."""
    return {n: np.asarray(reference[n], dtype=np.float32) for n in boundary_names(tail, reference)}


def plain_float(graph: Graph) -> bool:
    """True when every op of ``graph`` is a float op in the simulator: every tensor fp32 without
    a scale, no pruned op, no explicit quantize / dequantize / cast. The simulator then computes
    each op in float64 from float32 inputs and rounds its output to float32, which
    :func:`float32_outputs` approximates in float32 arithmetic."""
    from hwsim.sim.runner import _EXPLICIT

    return (all(t.quant == FP32 for t in graph.tensors.values())
            and all(op.op not in _EXPLICIT and getattr(op, "pruning", NO_PRUNING) == NO_PRUNING for op in graph.ops()))


def float32_outputs(graph: Graph, feed: dict[str, np.ndarray], seed: int = 0,
                    products: str = "float32") -> dict[str, np.ndarray]:
    """Graph outputs (float64 arrays) of a :func:`plain_float` graph run in float32 arithmetic.

    Every float value (inputs, constants, each op's output) is float32, and convolutions and
    matmuls run as float32 BLAS (sgemm, the executors' ``reference_dtype``) instead of float64;
    values of integer-typed tensors stay float64. Matmuls of two activations run on one BLAS
    thread (:func:`one_blas_thread`). Convolutions, ReLU, add and max pooling run channels last
    with batch norms folded into their convolutions (:mod:`hwsim.solve.tail_cnn`). Against the
    simulator's run of the same graph (float64 arithmetic, each output rounded to float32) the
    outputs differ only by float32 roundoff (a few float32 ulps per op; measured and bounded in
    ``tests/solve/test_solve_output_error.py`` and ``test_solve_tail_cnn.py``). Values die after
    their last reader; constants are converted when first read. Linears, attention products,
    softmax, LayerNorm and GELU run in :mod:`hwsim.solve.tail_tf` (LayerNorm as the float64
    formula rounded once to float32, within 1 ulp; GELU and softmax with float32 arithmetic
    inside, within 6 and 3 ulps).

    ``products="float64"``: convolutions and matmuls take float64 operands and sum in float64
    (each output rounded to float32; convolutions channels last, Winograd's in float64, no batch
    norm folded, see :mod:`hwsim.solve.tail_cnn`), and the other ops run in the simulator's
    executors, except the exact ReLU and max pooling: the simulator's arithmetic throughout, up
    to the summation order of float64 products and 1-ulp kernels (GELU's and softmax's too).
    """
    from hwsim.sim.boundary import is_integer_type
    from hwsim.sim.memory import liveness
    from hwsim.sim.qspec import const_real
    from hwsim.sim.registry import EXECUTORS, ExecContext

    def cast(name: str, x) -> np.ndarray:
        return np.asarray(x, np.float64 if is_integer_type(graph.tensors[name].dtype) else np.float32)

    def value(name: str) -> np.ndarray:  # constants converted when first read
        if name not in values:
            values[name] = _constant(graph.tensors[name]) if name in shared \
                else cast(name, const_real(graph.tensors[name]))
        return values[name]

    if products not in ("float32", "float64"):
        raise ValueError(f"products must be 'float32' or 'float64', got {products!r}")
    ctx = ExecContext(graph=graph, reference=True, seed=seed, reference_dtype=products)
    values = {n: cast(n, x) for n, x in feed.items()}
    shared = _shared_constants(graph)
    wide = products == "float64"
    cnn = ChannelsLast(graph, products)
    tf = tail_tf.Transformer(graph, products)
    dead = liveness(graph)
    for i, op in enumerate(graph.ops()):
        if cnn is not None and cnn.folded(op):  # its convolution computed it
            values[op.outputs[0]] = values[op.inputs[0]]
            cnn.fold_output(op)
        elif (y := tf.run(op, value)) is not None:  # first: it takes attention's multiply by its scale
            values[op.outputs[0]] = y
        elif cnn is not None and (y := cnn.run(op, value)) is not None:
            values[op.outputs[0]] = y
        else:
            xs = [value(t) for t in op.inputs]
            if wide:  # the simulator's arithmetic: float64 ops on the float32 values
                xs = [x.astype(np.float64) if x.dtype == np.float32 else x for x in xs]
            with one_blas_thread() if op.op == "matmul" else nullcontext():
                values[op.outputs[0]] = cast(op.outputs[0], EXECUTORS[op.op](ctx, op, xs))
        for t in dead[i]:
            values.pop(t, None)
    return {n: values[n].astype(np.float64) for n in graph.outputs}




def _shared_constants(graph: Graph) -> set[str]:
    """Constants :func:`float32_outputs` reads as the model's own arrays (:func:`_constant`): float32
    values of a float tensor whose every reader is a linear or a LayerNorm, which
    :mod:`hwsim.solve.tail_tf` computes without writing into them or handing them to a kernel
    compiled per argument type (the simulator's executors, taking the other ops, get copies)."""
    from hwsim.sim.boundary import is_integer_type

    readers: dict[str, set[str]] = {}
    for op in graph.ops():
        for t in op.inputs:
            readers.setdefault(t, set()).add(op.op)
    return {n for n, t in graph.tensors.items() if isinstance(t.data, np.ndarray) and t.data.dtype == np.float32
            and not is_integer_type(t.dtype) and readers.get(n) and readers[n] <= {"linear", "layernorm"}}


def _constant(t: Tensor) -> np.ndarray:
    """A constant of :func:`_shared_constants` as :func:`float32_outputs` reads it: its own array,
    read-only. Its values are those of ``const_real``'s float64 copy rounded to float32 (the same
    float32 numbers), which made two copies of every weight in each tail: ~0.3 s CPU of
    MiniLM-L6's cold sensitivity."""
    view = t.data.view()
    view.flags.writeable = False
    return view
