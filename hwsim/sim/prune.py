"""Weight pruning applied before quantization (what ``op.pruning`` of conv2d / linear means).

Weights are (out, in) for linear and (out, in / groups, kh, kw) for conv2d. The reduction axis of
a weight row is everything after axis 0, flattened in C order (for conv2d: in-channel, kh, kw).

- ``unstructured``: zero the ``amount`` fraction of smallest-|w| weights of the whole tensor
  (``floor(amount * numel)`` weights; ties broken by position, stable);
- ``nm``: in every run of ``m`` consecutive weights along the flattened reduction axis keep the
  ``n`` largest |w| (ties: lower index kept); a row whose length is not a multiple of ``m`` keeps
  its tail group proportionally (``ceil(n * len / m)`` of the tail);
- ``channel``: zero the ``floor(amount * out)`` output channels (rows) of smallest L2 norm.
"""

from __future__ import annotations

import math

import numpy as np

from hwsim.graph.quant import Pruning


def prune_unstructured(w: np.ndarray, amount: float) -> np.ndarray:
    """Zero the ``amount`` fraction of smallest-magnitude weights."""
    flat = np.asarray(w).reshape(-1)
    k = int(math.floor(amount * flat.size))
    out = flat.copy()
    if k:
        out[np.argsort(np.abs(flat), kind="stable")[:k]] = 0
    return out.reshape(np.shape(w))


def prune_nm(w: np.ndarray, n: int, m: int) -> np.ndarray:
    """Keep the ``n`` largest |w| in every group of ``m`` along the flattened reduction axis."""
    w = np.asarray(w)
    rows = w.reshape(w.shape[0], -1)
    k = rows.shape[1]
    full = (k // m) * m
    out = rows.copy()
    if full:
        g = rows[:, :full].reshape(rows.shape[0], -1, m)
        order = np.argsort(-np.abs(g), axis=-1, kind="stable")
        mask = np.zeros(g.shape, bool)
        np.put_along_axis(mask, order[..., :n], True, axis=-1)
        out[:, :full] = np.where(mask, g, 0).reshape(rows.shape[0], full)
    if k > full:
        tail = rows[:, full:]
        keep = math.ceil(n * tail.shape[1] / m)
        order = np.argsort(-np.abs(tail), axis=-1, kind="stable")
        mask = np.zeros(tail.shape, bool)
        np.put_along_axis(mask, order[:, :keep], True, axis=-1)
        out[:, full:] = np.where(mask, tail, 0)
    return out.reshape(w.shape)


def prune_channels(w: np.ndarray, amount: float) -> np.ndarray:
    """Zero the ``amount`` fraction of output channels (axis 0) with the smallest L2 norm."""
    w = np.asarray(w)
    k = int(math.floor(amount * w.shape[0]))
    out = w.copy()
    if k:
        norms = np.sqrt((w.reshape(w.shape[0], -1).astype(np.float64) ** 2).sum(axis=1))
        out[np.argsort(norms, kind="stable")[:k]] = 0
    return out


def apply_pruning(w: np.ndarray, pruning: Pruning) -> np.ndarray:
    """Apply a layer's :class:`~hwsim.graph.quant.Pruning` to its weight array (a new array)."""
    if pruning.kind == "unstructured":
        return prune_unstructured(w, pruning.amount)
    if pruning.kind == "nm":
        return prune_nm(w, pruning.n, pruning.m)  # type: ignore[arg-type]
    if pruning.kind == "channel":
        return prune_channels(w, pruning.amount)
    return np.asarray(w)
