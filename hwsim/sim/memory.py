"""Memory of a simulation, estimated from shapes alone before anything is allocated.

What :func:`hwsim.sim.runner.run` holds (bytes per element):

- every constant (weights, biases, buffers, index constants): its stored data (float32 for
  synthetic weights, else the file's dtype); the quantized float64 copy a compute op reads lives
  only until its last reader has run;
- the float reference (unless the run has none): a float64 copy of every activation and of every
  constant it does not keep as its float32 data (:func:`hwsim.sim.refvalues.kept_as_stored`),
  kept for the whole run (per-op error and reuse by the solver need it);
- every activation of the quantized run: a float64 value only while it is
  live (from its producer to its last reader; graph outputs to the end);
- the workspace of the op being executed (im2col patches, integer codes, packed GEMM operands and
  the integer accumulator), largest over the ops.

:func:`liveness` is the one place that decides when a quantized value dies; the runner frees by
it and the estimate counts by it.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

from hwsim.graph.ir import Graph

#: float64 values of the reference and of the quantized run
F64 = 8
#: im2col patches / integer codes (int64), packed GEMM operand (float32), chunk products (float32)
_GEMM_BYTES_PER_PATCH = 8 + 8 + 4
_CONST_ROLES = ("weight", "bias", "buffer", "const")
#: float64 arrays alive at once while a tensor is rounded onto its format (qspec.quantize)
_ROUNDING_COPIES = 5


@dataclass(frozen=True)
class MemoryEstimate:
    """Peak memory of one simulation, by part (bytes)."""

    constants_bytes: int
    reference_bytes: int
    live_bytes: int
    workspace_bytes: int
    workspace_op: str

    @property
    def total_bytes(self) -> int:
        return self.constants_bytes + self.reference_bytes + self.live_bytes + self.workspace_bytes


def _numel(shape) -> int:
    return math.prod(int(d) for d in shape)


def last_readers(ops: list) -> dict[str, int]:
    """Each tensor read by ``ops`` (in the order they run) -> the index of its last reader."""
    last: dict[str, int] = {}
    for i, op in enumerate(ops):
        for t in op.inputs:
            last[t] = i
    return last


def liveness(graph: Graph) -> list[list[str]]:
    """For each op (topological order), the tensors whose last reader it is.

    Graph outputs never die; constants die after their last reader like activations (their
    prepared, quantized copy is what is freed).
    """
    ops = graph.ops()
    dead: list[list[str]] = [[] for _ in ops]
    keep = set(graph.outputs)
    for t, i in last_readers(ops).items():
        if t not in keep:
            dead[i].append(t)
    return dead


def _workspace(graph: Graph, op) -> int:
    """Transient bytes of executing ``op``: inputs as int64 codes, GEMM patches, accumulator."""
    ins = [_numel(graph.tensors[t].shape) for t in op.inputs]
    out = _numel(graph.tensors[op.outputs[0]].shape)
    extra = 0
    if op.op == "conv2d":
        w = graph.tensors[op.inputs[1]].shape
        k = _numel(w[1:])
        extra = (out // max(int(w[0]), 1)) * k * _GEMM_BYTES_PER_PATCH
    elif op.op in ("linear", "matmul"):
        extra = sum(ins[:2]) * (_GEMM_BYTES_PER_PATCH - 8)
    # codes of every input; accumulator, requantized and rounded output with the temporaries
    # of rounding onto the output format (measured with tracemalloc: about 5 float64 arrays)
    return F64 * sum(ins) + _ROUNDING_COPIES * F64 * out + extra


def estimate(graph: Graph, reference: bool = True) -> MemoryEstimate:
    """Peak bytes :func:`hwsim.sim.runner.run` needs for ``graph`` (shapes only, nothing allocated);
    ``reference=False``: a run without the float reference (no float64 copies of constants and
    activations kept for the whole run)."""
    from hwsim.sim.refvalues import kept_as_stored

    consts = ref = 0
    stored_only = kept_as_stored(graph) if reference else set()
    size: dict[str, int] = {}
    for name, t in graph.tensors.items():
        n = _numel(t.shape)
        size[name] = n
        if t.role in _CONST_ROLES:
            stored = t.data.dtype.itemsize if t.data is not None else 4
            consts += n * stored
        if name not in stored_only:
            ref += n * F64
    live = peak_live = sum(size[n] for n in graph.inputs) * F64
    peak_ws, ws_op = 0, ""
    for op, dead in zip(graph.ops(), liveness(graph)):
        live += size[op.outputs[0]] * F64
        # a constant's prepared copy, made with the temporaries of quantizing it
        ws = _workspace(graph, op) + sum(size[t] * F64 * _ROUNDING_COPIES for t in op.inputs
                                         if graph.tensors[t].role in _CONST_ROLES)
        if ws > peak_ws:
            peak_ws, ws_op = ws, op.name
        peak_live = max(peak_live, live)
        live -= sum(size[t] for t in dead if graph.tensors[t].role not in _CONST_ROLES) * F64
    return MemoryEstimate(consts, ref if reference else 0, peak_live, peak_ws, ws_op)


def available_bytes() -> int | None:
    """Memory this process may still take: MemAvailable, capped by a cgroup limit; None if unknown."""
    avail = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
                    break
    except OSError:
        pass
    try:
        with open("/sys/fs/cgroup/memory.max") as f:
            limit = f.read().strip()
        with open("/sys/fs/cgroup/memory.current") as f:
            used = int(f.read().strip())
        if limit != "max":
            room = max(int(limit) - used, 0)
            avail = room if avail is None else min(avail, room)
    except (OSError, ValueError):
        pass
    if avail is None and hasattr(os, "sysconf"):
        try:
            avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError):
            pass
    return avail


def peak_rss_bytes() -> int | None:
    """Peak resident memory of this process so far (bytes), or None where unknown."""
    try:
        import resource
    except ImportError:
        return None
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def gib(n: int) -> str:
    return f"{n / 2**30:.1f} GiB"
