"""Seeded synthetic weights for models that carry none (the zoo).

Zoo models describe architecture only. Where values are needed (simulation, data-dependent cost)
they get deterministic synthetic weights: conv and linear weights ~ N(0, 2 / fan_in) (Kaiming
normal, as trained ReLU networks roughly keep), biases and norm shifts 0, norm scales 1,
batch-norm running mean 0 and variance 1, embeddings ~ N(0, 1), other parameters ~ N(0, 0.02).
Each tensor's stream is seeded by ``seed`` and a stable hash of its name, so one tensor's values
do not depend on which other tensors exist. Graphs given synthetic weights say so in ``notes``.
"""

from __future__ import annotations

import math
import zlib

import numpy as np

from hwsim.graph.ir import Graph, Tensor

SYNTHETIC_NOTE = "weights are seeded synthetic values (Kaiming-normal); the model file carries none"


def synthetic_values(t: Tensor, seed: int, rows: int | None = None) -> np.ndarray:
    """Seeded synthetic values of parameter ``t`` (module docstring): the one place they are drawn.

    Parameters
    ----------
    t : Tensor
        A weight, bias or buffer (only its name, role and shape are read).
    seed : int
        Model seed; each tensor's stream is ``[seed, crc32(name)]``.
    rows : int, optional
        Draw only the first ``rows`` entries of axis 0: bit-identical to the first rows of the
        full tensor (the stream fills in C order), so a sample sees the simulated values.
    """
    shape = tuple(t.shape) if rows is None else (min(rows, t.shape[0]),) + tuple(t.shape[1:])
    rng = np.random.default_rng([seed, zlib.crc32(t.name.encode())])
    leaf = t.name.rsplit(".", 1)[-1]
    if t.role == "bias" or leaf in ("running_mean",):
        return np.zeros(shape, np.float32)
    if leaf == "running_var" or (len(t.shape) == 1 and t.role == "weight"):
        return np.ones(shape, np.float32)
    if len(t.shape) in (2, 4) and "embed" not in t.name:
        scale = math.sqrt(2.0 / math.prod(t.shape[1:]))
    else:
        scale = 1.0 if "embed" in t.name else 0.02
    v = rng.standard_normal(shape)
    v *= scale  # in place: the same products as v * scale, one float64 array fewer at once
    return v.astype(np.float32)


def kaiming_columns(rows: int, keep: int, fan_in: int, seed: int) -> np.ndarray:
    """A (rows, keep) column sample of the Kaiming-normal law N(0, 2 / fan_in), float32.

    For tensors too large to draw in full (the cost model's statistics of a 100M-element
    embedding head): the same law as :func:`synthetic_values`, not the same values.
    """
    rng = np.random.default_rng([seed, rows, fan_in])
    return (rng.standard_normal((rows, keep)) * math.sqrt(2.0 / fan_in)).astype(np.float32)


def synthesize_weights(graph: Graph, seed: int = 0, layers: set[str] | None = None) -> Graph:
    """A copy of ``graph`` where every parameter/buffer without data gets synthetic values.

    ``layers`` restricts synthesis to the parameters of those ops (to keep big models cheap).
    """
    g = graph.copy()
    wanted = None
    if layers is not None:
        wanted = {t.name for op in g.ops() if op.name in layers for t in g.weights(op)}
    todo = [t for name, t in graph.tensors.items()
            if t.data is None and t.role in ("weight", "bias", "buffer") and (wanted is None or name in wanted)]
    for t, values in zip(todo, _drawn(todo, seed)):
        g.set_data(t.name, values)
    if todo and SYNTHETIC_NOTE not in g.notes:
        g.notes.append(SYNTHETIC_NOTE)
    return g


#: elements of synthetic values below which :func:`_drawn` draws on the calling thread alone
_THREADED_ELEMENTS = 1 << 20


def _drawn(tensors: list[Tensor], seed: int) -> list[np.ndarray]:
    """:func:`synthetic_values` of each tensor, in order; on one thread per CPU where there are
    many values (numpy's generators and ufuncs release the GIL over large arrays, and each
    tensor has its own stream, so the values do not depend on the threads: MiniLM-L6's 22.7M
    values took 0.45-0.5 s on one thread of the 2-core Xeon, on the critical path of every cold
    solve and simulate of a zoo model, 2026-11-27)."""
    from concurrent.futures import ThreadPoolExecutor

    from hwsim.sim.refblas import cpu_count  # its callers (the simulator, compare) have loaded hwsim.sim

    cpus = cpu_count()
    if cpus < 2 or sum(math.prod(t.shape) for t in tensors) < _THREADED_ELEMENTS:
        return [synthetic_values(t, seed) for t in tensors]
    # a tensor of _ALONE_ELEMENTS or more is drawn by itself: its float64 draw is 8 bytes a value
    # (1 GiB for a 32,000 x 4,096 vocabulary), and two at once would double the peak
    big = {i for i, t in enumerate(tensors) if math.prod(t.shape) >= _ALONE_ELEMENTS}
    out = {i: synthetic_values(tensors[i], seed) for i in sorted(big)}
    rest = [i for i in range(len(tensors)) if i not in big]
    with ThreadPoolExecutor(min(cpus, 4), thread_name_prefix="hwsim-weights") as pool:
        out.update(zip(rest, pool.map(lambda i: synthetic_values(tensors[i], seed), rest)))
    return [out[i] for i in range(len(tensors))]


#: elements of a tensor that :func:`_drawn` draws alone, not beside others
_ALONE_ELEMENTS = 1 << 24
