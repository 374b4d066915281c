"""Error metrics of a simulated tensor against its float reference."""

from __future__ import annotations

import numpy as np


def mse(ref: np.ndarray, out: np.ndarray) -> float:
    """Mean squared error (units of the tensor squared); NaN if either holds NaN."""
    ref, out = np.asarray(ref, np.float64), np.asarray(out, np.float64)
    with np.errstate(invalid="ignore", over="ignore"):  # inf - inf is NaN by design, not a warning
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


def errors(ref: np.ndarray, out: np.ndarray) -> tuple[float, float]:
    """``(sqnr_db(ref, out), mse(ref, out))`` with one difference pass (same values as the two)."""
    ref, out = np.asarray(ref, np.float64), np.asarray(out, np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        d2 = (ref - out) ** 2
        noise, signal = float(np.sum(d2)), float(np.sum(ref ** 2))
    if not ref.size or not (np.isfinite(noise) and np.isfinite(signal)):  # non-finite values (or sums):
        return sqnr_db(ref, out), mse(ref, out)  # the plain functions' rules, no finiteness pass here
    err = float(np.mean(d2))
    if noise == 0.0:
        return float("inf"), err
    if signal == 0.0:
        return float("-inf"), err
    return 10.0 * float(np.log10(signal / noise)), err


def class_labels(labels, classes: int | None = None, origin: str = "labels") -> np.ndarray:
    """``labels`` as int64 class indices; InputDataError unless each is a whole number in [0, classes).

    Float arrays are accepted when every value is a finite whole number (labels saved as floats).
    """
    from hwsim.errors import InputDataError

    arr = np.asarray(labels)
    fix = "store one integer class index per sample, e.g. np.savez(..., labels=y.astype(np.int64))"
    if arr.dtype.kind not in "iuf":
        raise InputDataError(f"{origin} have dtype {arr.dtype}; {fix}")
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr) & (arr == np.round(arr))):
        raise InputDataError(f"{origin} hold NaN, inf or fractional values; {fix}")
    bad = (arr < 0) | (arr >= classes) if classes is not None else arr < 0
    if np.any(bad):
        hi = "" if classes is None else f", {classes})"
        raise InputDataError(f"{origin} hold {arr[bad].ravel()[0].item()!r}, outside the class indices [0{hi or ', ...)'}; {fix}")
    return arr.astype(np.int64)


def top1_accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of rows whose largest logit (last axis) is at the label's index.

    Parameters
    ----------
    logits : ndarray, shape (N, ..., classes)
    labels : ndarray of int, shape (N, ...)
    """
    logits, labels = np.asarray(logits), class_labels(labels, logits.shape[-1])
    if labels.shape != logits.shape[:-1]:
        from hwsim.errors import InputDataError

        raise InputDataError(f"labels have shape {labels.shape}, the first output {logits.shape} needs "
                             f"{logits.shape[:-1]} (one class index per row)")
    return float(np.mean(np.argmax(logits, axis=-1) == labels)) if labels.size else 0.0
