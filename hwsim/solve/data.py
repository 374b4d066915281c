"""Calibration data for sensitivity: an ``.npz`` file, or seeded synthetic inputs for zoo models.

An ``.npz`` holds one array per graph input (by input name; a single input may also be stored
under any name) with the sample axis first, and optionally ``labels`` (integer class per sample)
for the task-loss metric. Only the first ``samples`` rows are simulated.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hwsim.errors import InputDataError
from hwsim.graph.ir import Graph
from hwsim.sim.boundary import describe_inputs, random_inputs
from hwsim.sim.npzio import npz_names, read_npz
from hwsim.sim.metrics import class_labels

LABEL_KEYS = ("labels", "label", "targets", "y")


@dataclass(frozen=True)
class CalibData:
    """Inputs for sensitivity measurement.

    Attributes
    ----------
    inputs : dict of str to numpy.ndarray
        Graph input name -> array with the sample axis first.
    labels : numpy.ndarray or None
        Class index per sample, when known.
    source : str
        Where the data came from (a path, or ``synthetic N(0,1), seed S``), shown in reports.
    """

    inputs: dict[str, np.ndarray]
    labels: np.ndarray | None = None
    source: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def samples(self) -> int:
        return int(next(a for a in self.inputs.values() if a.ndim).shape[0])

    def digest(self) -> str:
        """sha256 of the arrays (and labels): part of the sensitivity cache key."""
        h = hashlib.sha256()
        for name in sorted(self.inputs):
            a = np.ascontiguousarray(self.inputs[name])
            h.update(name.encode() + str(a.dtype).encode() + str(a.shape).encode() + a.tobytes())
        if self.labels is not None:
            h.update(b"labels" + np.ascontiguousarray(self.labels).tobytes())
        return h.hexdigest()

    def take(self, n: int) -> "CalibData":
        """The first ``n`` samples."""
        labels = None if self.labels is None else self.labels[:n]
        return CalibData({k: v[:n] if v.ndim else v for k, v in self.inputs.items()}, labels, self.source,
                         list(self.notes))


def load_npz(path: str | Path, graph: Graph, samples: int | None = None) -> CalibData:
    """Read a calibration ``.npz`` for ``graph`` (see module docstring)."""
    p = Path(path)
    if not p.is_file():
        raise InputDataError(f"calibration file {str(path)!r} not found")
    names = npz_names(str(p), "calibration")
    wanted = names if len(names) == 1 else [n for n in names if n in graph.inputs or n in LABEL_KEYS]
    arrays = read_npz(str(p), "calibration", wanted)  # members no one reads are never decompressed
    labels = next((arrays.pop(k) for k in LABEL_KEYS if k in arrays), None)
    inputs = {n: arrays[n] for n in graph.inputs if n in arrays}
    if not inputs and len(graph.inputs) == 1 and len(arrays) == 1:
        inputs = {graph.inputs[0]: next(iter(arrays.values()))}
    missing = [n for n in graph.inputs if n not in inputs]
    if missing:
        raise InputDataError(f"{path}: no array for graph input(s) {missing}; the file holds {sorted(names)} "
                             f"(store each input under its name, samples first, and labels under 'labels')")
    for n, a in inputs.items():
        bad = ~np.isfinite(a) if a.dtype.kind in "fc" else None
        if bad is not None and bad.any():
            rows = np.unique(np.nonzero(bad.reshape(len(a), -1) if a.ndim else bad.reshape(1, 1))[0])
            raise InputDataError(f"{path}: input {n!r} holds {int(bad.sum())} NaN or inf value(s) (sample(s) "
                                 f"{', '.join(map(str, rows[:5]))}{', ...' if rows.size > 5 else ''}); the float "
                                 "reference of such a sample is not finite, so no sensitivity can be measured "
                                 "on it: remove those samples")
    counts = {a.shape[0] for a in inputs.values() if a.ndim}
    if not counts:
        raise InputDataError(f"{path}: every input is a scalar; store each input with the sample axis first "
                             "(scalars are taken as one value shared by all samples)")
    if len(counts) != 1:
        raise InputDataError(f"{path}: inputs disagree on the number of samples ({sorted(counts)})")
    if labels is not None:
        labels = class_labels(labels, origin=f"{path}: labels").reshape(-1)
        if labels.shape[0] != next(iter(counts)):
            raise InputDataError(f"{path}: {labels.shape[0]} labels for {next(iter(counts))} samples")
    data = CalibData(inputs, labels, str(p))
    return data.take(samples) if samples else data


def synthetic(graph: Graph, samples: int, seed: int = 0) -> CalibData:
    """Seeded inputs for models without data (:func:`hwsim.sim.boundary.random_inputs`: N(0, 1)
    floats, token ids below the vocabulary of the table they index, attention masks of ones,
    position ids 0, 1, 2, ...).

    The graph's leading input dimension is taken as its batch; ``samples`` rows are drawn.
    """
    inputs = random_inputs(graph, np.random.default_rng([seed, 11]), batch=samples)
    return CalibData(inputs, None, f"synthetic inputs ({describe_inputs(graph)}), seed {seed}",
                     [f"sensitivity measured on {samples} seeded synthetic input samples (no calibration data given)"])
