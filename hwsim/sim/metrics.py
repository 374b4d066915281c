"""Error metrics of a simulated tensor against its float reference."""

from __future__ import annotations

import numpy as np


def mse(ref: np.ndarray, out: np.ndarray) -> float:
    """Mean squared error (units of the tensor squared); NaN if either holds NaN."""
    ref, out = np.asarray(ref, np.float64), np.asarray(out, np.float64)
    return float(np.mean((ref - out) ** 2)) if ref.size else 0.0


def sqnr_db(ref: np.ndarray, out: np.ndarray) -> float:
    """Signal-to-quantization-noise ratio ``10 log10(sum ref^2 / sum (ref - out)^2)`` in dB.

    ``inf`` when the two are identical, ``-inf`` for a zero reference with non-zero error, NaN
    when either holds NaN or inf.
    """
    ref, out = np.asarray(ref, np.float64), np.asarray(out, np.float64)
    if not (np.all(np.isfinite(ref)) and np.all(np.isfinite(out))):
        if np.array_equal(ref, out, equal_nan=True):
            return float("inf")
        return float("nan")
    noise = float(np.sum((ref - out) ** 2))
    signal = float(np.sum(ref ** 2))
    if noise == 0.0:
        return float("inf")
    if signal == 0.0:
        return float("-inf")
    return 10.0 * float(np.log10(signal / noise))


def top1_accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of rows whose largest logit (last axis) is at the label's index.

    Parameters
    ----------
    logits : ndarray, shape (N, ..., classes)
    labels : ndarray of int, shape (N, ...)
    """
    logits, labels = np.asarray(logits), np.asarray(labels)
    if labels.shape != logits.shape[:-1]:
        from hwsim.errors import InputDataError

        raise InputDataError(f"labels have shape {labels.shape}, the first output {logits.shape} needs "
                             f"{logits.shape[:-1]} (one class index per row)")
    return float(np.mean(np.argmax(logits, axis=-1) == labels)) if labels.size else 0.0
