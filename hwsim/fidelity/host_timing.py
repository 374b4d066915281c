"""Timing ONNX models in onnxruntime on a shared, loaded machine (``hwsim calibrate --host``).

A machine that others use at the same time slows a run down by whatever else the cores are doing;
the minimum over repeats estimates the unloaded time only if some repeat ran undisturbed, which a
run of hundreds of milliseconds on two busy cores rarely does. So a model's latency is measured
per node: onnxruntime's profiler gives every node's kernel time in every run, and

    latency_s = sum over nodes of (minimum kernel time of that node over the runs)
              + sum over nodes of (minimum executor time before that node's kernel over the runs)
              + minimum executor time after the last kernel

(the executor's own time between kernels is taken gap by gap, like the kernels: the minimum of a
whole run's gaps needs every one of them quiet in the same run, which a loaded machine rarely gives).
Each node is short, so its minimum is seen undisturbed far more often than a whole run. The plain minimum and median of whole runs are
kept beside it (:class:`Timing`), so the two can be compared; on an idle machine they agree.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

#: onnxruntime graph optimizer that fails on signed int8 QDQ MatMul + Add in onnxruntime 1.2x
#: ("output_dtype INT8 does not match y_zero_point type UINT8"); disabled only for sessions that fail
FAILING_FUSION = "MatMulAddFusion"


@dataclass(frozen=True)
class Timing:
    """One model timed in onnxruntime."""

    latency_s: float       # per-node minima + minimum executor overhead (module docstring)
    run_min_s: float       # fastest whole run
    run_median_s: float    # median whole run
    runs: int
    nodes: int             # kernels onnxruntime ran per run (after its graph fusions)
    note: str = ""         # how the session differs from onnxruntime's defaults, if it does
    node_min_s: tuple = ()  # (node, minimum kernel seconds) pairs, so timings of rounds can be merged
    gap_min_s: float = 0.0  # executor time between kernels: the sum of gap_each_s
    gap_each_s: tuple = ()  # (node, minimum executor seconds before its kernel) pairs; "" = after the last
    energy_j: float | None = None  # energy counter change per run over the timed runs (None: no counter)


def merge(a: Timing | None, b: Timing) -> Timing:
    """One timing from two rounds of the same model: per-node minima over both, runs summed, the
    median of the round with more runs. Rounds spread over minutes meet more quiet moments of a
    shared machine than one round does."""
    if a is None:
        return b
    nodes, gaps = _minima(a.node_min_s, b.node_min_s), _minima(a.gap_each_s, b.gap_each_s)
    gap = sum(gaps.values())
    return Timing(latency_s=sum(nodes.values()) + gap, run_min_s=min(a.run_min_s, b.run_min_s),
                  run_median_s=(a if a.runs >= b.runs else b).run_median_s, runs=a.runs + b.runs,
                  nodes=len(nodes), note=a.note or b.note, node_min_s=tuple(sorted(nodes.items())), gap_min_s=gap,
                  gap_each_s=tuple(sorted(gaps.items())),
                  energy_j=min((e for e in (a.energy_j, b.energy_j) if e is not None), default=None))


def _minima(*groups) -> dict[str, float]:
    """Per-key minimum over the (key, seconds) pairs or dicts of ``groups``."""
    out: dict[str, float] = {}
    for g in groups:
        for name, v in (g.items() if isinstance(g, dict) else g):
            out[name] = min(out.get(name, v), v)
    return out


def session(model, threads: int, profile_dir: str | None = None, dims: dict[str, int] | None = None):
    """(onnxruntime CPU session of ``model`` (ModelProto, bytes or path), note); ``threads`` intra-op
    threads, one inter-op. Retries without :data:`FAILING_FUSION` where the default optimizer fails.

    ``dims`` binds named dynamic dimensions at session creation (onnxruntime's free-dimension
    overrides), so onnxruntime optimizes the model at the fixed shapes hwsim prices it at: shape
    arithmetic (Shape, Gather, Unsqueeze, Concat on shapes) folds away in both."""
    import onnxruntime as ort

    data = model.SerializeToString() if hasattr(model, "SerializeToString") else model
    note = ""
    for attempt in range(2):
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        so.log_severity_level = 4  # failures are raised, not logged
        for name, value in (dims or {}).items():
            so.add_free_dimension_override_by_name(name, value)
        if profile_dir is not None:
            so.enable_profiling = True
            so.profile_file_prefix = os.path.join(profile_dir, "ort")
        if attempt:
            so.add_session_config_entry("optimization.disable_specified_optimizers", FAILING_FUSION)
            note = f"onnxruntime's {FAILING_FUSION} disabled (it fails on this model)"
        try:
            return ort.InferenceSession(data, so, providers=["CPUExecutionProvider"]), note
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own types
            if attempt or FAILING_FUSION.lower() not in str(exc).lower() and "y_zero_point" not in str(exc):
                raise
    raise AssertionError("unreachable")


def _per_run(events: list[dict]) -> tuple[list[float], list[dict[str, float]], list[dict[str, float]]]:
    """(run seconds, {node: kernel seconds}, {node: executor seconds before its kernel, "": after the
    last kernel}) per profiled run."""
    runs = sorted((e for e in events if e.get("cat") == "Session" and e.get("name") == "model_run"),
                  key=lambda e: e["ts"])
    nodes = sorted((e for e in events if e.get("cat") == "Node" and e["name"].endswith("_kernel_time")),
                   key=lambda e: e["ts"])
    walls, kernels, gaps, j = [], [], [], 0
    for r in runs:
        end, got, gap, last = r["ts"] + r["dur"], {}, {}, r["ts"]
        while j < len(nodes) and nodes[j]["ts"] < r["ts"]:
            j += 1
        while j < len(nodes) and nodes[j]["ts"] <= end:
            name = nodes[j]["name"]
            got[name] = got.get(name, 0.0) + nodes[j]["dur"] * 1e-6
            gap[name] = gap.get(name, 0.0) + max(nodes[j]["ts"] - last, 0) * 1e-6
            last = max(last, nodes[j]["ts"] + nodes[j]["dur"])
            j += 1
        gap[""] = max(end - last, 0) * 1e-6
        walls.append(r["dur"] * 1e-6)
        kernels.append(got)
        gaps.append(gap)
    return walls, kernels, gaps


def time_model(model, feeds: dict, threads: int, runs: int = 10, seconds: float | None = None,
               energy: Callable[[], float | None] | None = None, dims: dict[str, int] | None = None,
               skip_ops: tuple[str, ...] = ()) -> Timing:
    """Time ``model`` on ``feeds``: ``runs`` profiled runs after one warm-up, or more while
    ``seconds`` have not passed (see the module docstring for what ``latency_s`` is). ``energy``, a
    counter in joules (e.g. :func:`hwsim.fidelity.host.rapl_joules`), gives the energy per run over
    the timed runs (the lowest of two rounds when merged: the least disturbed). ``dims``: fixed
    dynamic dimensions (:func:`session`); ``skip_ops``: onnxruntime node types (after its graph
    optimizations, e.g. ``ReorderInput``) whose kernel times are left out of ``latency_s``."""
    with tempfile.TemporaryDirectory(prefix="hwsim-ort-") as tmp:
        sess, note = session(model, threads, tmp, dims)
        sess.run(None, feeds)
        walls, n = [], 0
        e0 = energy() if energy else None
        end = time.perf_counter() + (seconds or 0.0)
        while n < runs or time.perf_counter() < end:
            t0 = time.perf_counter()
            sess.run(None, feeds)
            walls.append(time.perf_counter() - t0)
            n += 1
        e1 = energy() if energy else None
        with open(sess.end_profiling()) as f:
            events = json.load(f)
    prof_walls, kernels, gaps = _per_run(events)
    kernels, gaps = kernels[1:], gaps[1:]  # the warm-up run
    skipped = {e["name"] for e in events if e.get("cat") == "Node" and e.get("args", {}).get("op_name") in skip_ops}
    nodes = _minima(*({n: v for n, v in k.items() if n not in skipped} for k in kernels))
    between = _minima(*({n: v for n, v in g.items() if n not in skipped} for g in gaps))
    gap = sum(between.values())
    return Timing(latency_s=sum(nodes.values()) + gap, run_min_s=float(min(walls)),
                  run_median_s=float(np.median(walls)), runs=n, nodes=len(nodes), note=note,
                  node_min_s=tuple(sorted(nodes.items())), gap_min_s=gap, gap_each_s=tuple(sorted(between.items())),
                  energy_j=(e1 - e0) / n if e0 is not None and e1 is not None and e1 > e0 else None)


def random_feeds(sess, shapes: dict[str, int], seed: int = 0) -> dict[str, np.ndarray]:
    """Random inputs for every graph input of ``sess`` (dynamic dims from ``shapes``, else 1);
    integer inputs get 0/1, valid for any embedding table, mask or index input."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for inp in sess.get_inputs():
        dims = [d if isinstance(d, int) else shapes.get(str(d), 1) for d in inp.shape]
        if inp.type == "tensor(uint8)":
            feeds[inp.name] = rng.integers(0, 256, dims).astype(np.uint8)
        elif inp.type == "tensor(int8)":
            feeds[inp.name] = rng.integers(-128, 128, dims).astype(np.int8)
        elif "int" in inp.type:
            feeds[inp.name] = rng.integers(0, 2, dims).astype(np.int64 if "64" in inp.type else np.int32)
        else:
            feeds[inp.name] = rng.standard_normal(dims).astype(np.float32)
    return feeds
