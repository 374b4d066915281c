"""Error metrics of a simulated tensor against its float reference, and the notes that name
non-finite values (NaN logits, saturated inf inputs, overflow to inf) instead of hiding them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np


def _sum_sq(x: np.ndarray) -> float:
    """``sum(x ** 2)`` in one pass without a temporary (einsum's SIMD sum of products; 2.3x
    faster than np.sum(x ** 2) on a 9.6M-element activation), the one sum every metric here uses.
    Summed in memory order (no copy of a channels-last (N, C, H, W) view)."""
    flat = np.asarray(x, np.float64).ravel(order="K")
    return float(np.einsum("i,i->", flat, flat))


def mse(ref: np.ndarray, out: np.ndarray) -> float:
    """Mean squared error (units of the tensor squared); NaN if either holds NaN."""
    ref, out = np.asarray(ref, np.float64), np.asarray(out, np.float64)
    with np.errstate(invalid="ignore", over="ignore"):  # inf - inf is NaN by design, not a warning
        return _sum_sq(ref - out) / ref.size if ref.size else 0.0


def sqnr_db(ref: np.ndarray, out: np.ndarray) -> float:
    """Signal-to-quantization-noise ratio ``10 log10(sum ref^2 / sum (ref - out)^2)`` in dB.

    ``inf`` when the two are identical and NaN-free, ``-inf`` for a zero reference with non-zero
    error, NaN when either holds NaN (an all-NaN output is not "identical") or they differ where
    one holds inf.
    """
    ref, out = np.asarray(ref, np.float64), np.asarray(out, np.float64)
    if not (np.all(np.isfinite(ref)) and np.all(np.isfinite(out))):
        if np.array_equal(ref, out) and not np.isnan(ref).any():
            return float("inf")
        return float("nan")
    noise, signal = _sum_sq(ref - out), _sum_sq(ref)
    if noise == 0.0:
        return float("inf")
    if signal == 0.0:
        return float("-inf")
    return 10.0 * float(np.log10(signal / noise))


def errors(ref: np.ndarray, out: np.ndarray) -> tuple[float, float]:
    """``(sqnr_db(ref, out), mse(ref, out))`` with one difference pass (same values as the two)."""
    ref, out = np.asarray(ref, np.float64), np.asarray(out, np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        noise, signal = _sum_sq(ref - out), _sum_sq(ref)
    if not ref.size or not (np.isfinite(noise) and np.isfinite(signal)):  # non-finite values (or sums):
        return sqnr_db(ref, out), mse(ref, out)  # the plain functions' rules, no finiteness pass here
    return _from_sums(noise, signal, ref.size)


def _from_sums(noise: float, signal: float, size: int) -> tuple[float, float]:
    """(SQNR dB, MSE) of finite sums ``noise = sum (ref - out)**2``, ``signal = sum ref**2``."""
    err = noise / size  # mse's value: the same sum over the count
    if noise == 0.0:
        return float("inf"), err
    if signal == 0.0:
        return float("-inf"), err
    return 10.0 * float(np.log10(signal / noise)), err


def coded_errors(ref, out) -> tuple[float, float]:
    """:func:`errors` of ``out`` against ``ref``, each an array or a deferred value: per-tensor
    codes (:class:`~hwsim.sim.qspec.Coded`) are read as they are, and a reference product plus
    its bias (:class:`~hwsim.sim.refvalues.Biased`) is summed as it is read, in one pass
    (:mod:`hwsim.kernels.errsum`) where the two share one memory order (4-D codes and a float64
    reference in different layouts in one pass too; codes whose rows of channels lie apart, as cut
    from a padded GEMM output, row by row; a float32 :class:`~hwsim.sim.refvalues.Product` read as
    it is, each value widened exactly; a float array against a float array in one pass too, as
    codes of zero point 0 and scale 1: ResNet-18 b8 int8/int8's 50 real outputs 0.42 -> 0.13 s per
    run, 2026-11-27); the sums equal those of
    :func:`errors` on the float64 values up to summation order (relative ~1e-15). Anything else,
    and non-finite sums, take :func:`errors` on the float64 values."""
    from hwsim.sim.qspec import Coded, flat_pair, real_of
    from hwsim.sim.refvalues import Biased, Product

    params = out.per_tensor() if isinstance(out, Coded) else None
    if params is not None and isinstance(ref, Product):
        ref = ref.y
    sums = None
    if params is not None and isinstance(ref, Biased):
        y = ref.flat()
        pair = None if y is None else flat_pair(ref.y, out.codes)
        if pair is not None:
            from hwsim.kernels.errsum import _biased_coded_sums

            sums = _biased_coded_sums(pair[0], ref.bias, pair[1], np.float64(params[0]), np.float64(params[1]))
        elif y is not None and (rows := _code_rows(ref.y, out.codes, ref.bias.size)) is not None:
            from hwsim.kernels.errsum import _biased_coded_rows

            sums = _biased_coded_rows(y.reshape(-1, ref.bias.size), ref.bias, rows, np.float64(params[0]),
                                      np.float64(params[1]))
    elif params is not None:
        ref = np.asarray(ref)
        exact = ref.dtype in (np.float64, np.float32)  # read as float64 in the sums
        pair = flat_pair(ref, out.codes) if exact else None
        if pair is not None:
            from hwsim.kernels.errsum import _coded_sums

            sums = _coded_sums(pair[0], pair[1], np.float64(params[0]), np.float64(params[1]))
        elif exact and ref.ndim == 4 and ref.shape == out.codes.shape:  # layouts differ
            from hwsim.kernels.errsum import _coded_sums_4d

            axes = sorted(range(4), key=lambda i: (-abs(ref.strides[i]), i))  # ref's memory order
            sums = _coded_sums_4d(ref.transpose(axes), out.codes.transpose(axes), np.float64(params[0]),
                                  np.float64(params[1]))
    elif isinstance(out, np.ndarray) and isinstance(ref, np.ndarray) and out.dtype in _FLOATS and ref.dtype in _FLOATS:
        # real outputs (a format without 8-bit codes), read as codes of zero point 0 and scale 1
        # (exactly themselves): no float64 difference array
        pair = flat_pair(ref, out)
        if pair is not None:
            from hwsim.kernels.errsum import _coded_sums

            sums = _coded_sums(pair[0], pair[1], 0.0, 1.0)
        elif ref.ndim == 4 and ref.shape == out.shape:  # layouts differ
            from hwsim.kernels.errsum import _coded_sums_4d

            axes = sorted(range(4), key=lambda i: (-abs(ref.strides[i]), i))  # ref's memory order
            sums = _coded_sums_4d(ref.transpose(axes), out.transpose(axes), 0.0, 1.0)
    size = out.codes.size if params is not None else np.size(out)
    if sums is not None and params is not None and size and np.isfinite(params[1]) \
            and (np.isnan(sums[0]) or np.isnan(sums[1])):
        # codes times a finite scale are finite, so a NaN sum is a NaN in the reference, for which
        # :func:`errors` gives NaN and NaN too (after several float64 passes: 1 s of a 2 s run of a
        # recogniser whose own reference overflows, 303 ops, 2026-11-28)
        return float("nan"), float("nan")
    if sums is None or not (np.isfinite(sums[0]) and np.isfinite(sums[1])) or not size:
        return errors(real_of(ref), real_of(out))
    return _from_sums(sums[0], sums[1], size)


#: array types the one-pass sums read (as float64, exactly)
_FLOATS = (np.float64, np.float32)


def _code_rows(y: np.ndarray, codes: np.ndarray, channels: int) -> np.ndarray | None:
    """``codes`` (the shape of ``y``) as a view of rows (R, ``channels``) in ``y``'s memory order,
    whose innermost axis (the channels) holds consecutive codes and whose rows lie one stride apart
    (codes cut from a wider, padded array), or None when they do not (no copy is made)."""
    if codes.shape != y.shape:
        return None
    order = sorted(range(y.ndim), key=lambda i: (-y.strides[i], i))
    ct = codes.transpose(order)
    if ct.shape[-1] != channels or ct.strides[-1] != codes.itemsize:
        return None
    outer = [(n, st) for n, st in zip(ct.shape[:-1], ct.strides[:-1]) if n != 1]
    if any(st0 != st1 * n1 for (_, st0), (n1, st1) in zip(outer, outer[1:])):
        return None  # the rows are not one stride apart
    row = outer[-1][1] if outer else channels * codes.itemsize
    return np.lib.stride_tricks.as_strided(ct, (codes.size // channels, channels), (row, ct.strides[-1]),
                                           writeable=False)


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


@dataclass(frozen=True)
class Top1:
    """Top-1 accuracy and the rows that could not be scored."""

    accuracy: float  #: fraction of rows whose largest logit is at the label (NaN rows count as wrong)
    rows: int  #: rows scored
    nan_rows: int  #: rows holding a NaN logit (no class can be read from them)


def top1(logits: np.ndarray, labels: np.ndarray) -> Top1:
    """Top-1 accuracy over the last axis; a row holding NaN is a wrong answer, counted in ``nan_rows``.

    Parameters
    ----------
    logits : ndarray, shape (N, ..., classes)
    labels : ndarray of int, shape (N, ...)
    """
    logits = np.asarray(logits)
    labels = class_labels(labels, logits.shape[-1])
    if labels.shape != logits.shape[:-1]:
        from hwsim.errors import InputDataError

        raise InputDataError(f"labels have shape {labels.shape}, the first output {logits.shape} needs "
                             f"{logits.shape[:-1]} (one class index per row)")
    if not labels.size:
        return Top1(0.0, 0, 0)
    nan = np.isnan(logits).any(axis=-1) if logits.dtype.kind in "fc" else np.zeros(labels.shape, bool)
    right = (np.argmax(logits, axis=-1) == labels) & ~nan  # argmax of a NaN row is its first NaN
    return Top1(float(np.mean(right)), int(labels.size), int(nan.sum()))


def top1_accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    """``top1(logits, labels).accuracy``."""
    return top1(logits, labels).accuracy


def rounding_notes(label: str, fmt: str, before: np.ndarray, after: np.ndarray) -> list[str]:
    """Name what rounding onto format ``fmt`` did to non-finite or out-of-range values.

    ``before`` are real values, ``after`` the same values on the format's grid (same shape).
    Empty when every value was and stays finite.
    """
    b, a = np.asarray(before, np.float64), np.asarray(after, np.float64)
    if np.isfinite(b).all() and np.isfinite(a).all():
        return []
    inf_in, fin_in = np.isinf(b), np.isfinite(b)
    notes = []
    sat = inf_in & np.isfinite(a)
    if sat.any():
        notes.append(f"{label}: {int(sat.sum())} +-inf values saturate to the {fmt} range "
                     f"({_g(a[sat].min())} .. {_g(a[sat].max())} here)")
    for mask, what in ((inf_in & np.isinf(a), f"+-inf values stay +-inf ({fmt} has inf)"),
                       (inf_in & np.isnan(a), f"+-inf values become NaN ({fmt} has no inf)"),
                       (fin_in & np.isinf(a), f"finite values beyond the {fmt} range overflow to +-inf"),
                       (fin_in & np.isnan(a), f"finite values beyond the {fmt} range overflow to NaN"),
                       (np.isnan(b), "NaN values")):
        if mask.any():
            notes.append(f"{label}: {int(mask.sum())} {what}")
    return notes


def _g(x: float) -> str:
    return f"{x:g}"


def nonfinite_notes(items: Iterable[tuple[str, np.ndarray, np.ndarray]], limit: int = 3) -> list[str]:
    """Notes for ``(label, reference, simulated)`` triples whose simulated values are NaN or inf
    (``reference`` None: no float reference to compare with, the non-finite count is said).

    An all-NaN tensor is said as such; otherwise the values that are non-finite where the float
    reference is finite (overflow inside the simulated formats). At most ``limit`` notes, then a
    count of the rest (one overflow propagates to every later op).
    """
    notes, more = [], 0
    for label, ref, out in items:
        msg = _nonfinite_msg(label, ref, np.asarray(out))
        if msg and len(notes) < limit:
            notes.append(msg)
        elif msg:
            more += 1
    if more:
        notes.append(f"... and {more} more tensors with NaN or inf values")
    return notes


def reference_nonfinite_note(layers, simulated_nonfinite: set) -> str | None:
    """A note when the float reference itself is NaN or inf: the first op (in run order) whose
    error against it is not finite while the op's simulated values are (``simulated_nonfinite``:
    names of the ops whose simulated values are not), and how many ops have no error figure.
    ``layers``: :class:`~hwsim.sim.runner.LayerError` items in run order. None when there is none."""
    bad = [e for e in layers if e is not None and not np.isfinite(e.mse) and e.name not in simulated_nonfinite]
    if not bad:
        return None
    first = bad[0]
    return (f"the float reference is NaN or inf from {first.op} '{first.name}' on ({len(bad)} of {len(layers)} "
            "ops have no SQNR; the simulated values are finite): the graph run with its quantizers taken out "
            "overflows, so it is not a float model of this one there. In a QDQ model the quantizers can stand in "
            "for ops removed at quantization (onnxruntime's quantize_static drops each Clip or Relu whose range "
            "a QuantizeLinear clamps anyway); SQNR and MSE against this reference are not meaningful: give the "
            "float model as the reference to compare with (--reference-model FLOAT.onnx; run(reference_graph=...))")


def unmatched_note(ops: list[str], matched: int, limit: int = 3) -> str | None:
    """A note naming the ops (``"op 'name'"``) whose output has no tensor of the same name in the
    reference model, so no SQNR (``matched``: how many ops have one). None when every op has one."""
    if not ops:
        return None
    named = ", ".join(ops[:limit]) + (f" and {len(ops) - limit} more" if len(ops) > limit else "")
    return (f"{len(ops)} of {len(ops) + matched} ops have no tensor of the same name in the reference model, so no "
            f"SQNR ({named}): it computes them under other names, or not at all")


#: ops whose output can be negative (a quantizer after them that cannot hold negatives clamps)
_SIGNED_OUTPUT_OPS = ("conv2d", "linear", "matmul", "batchnorm")


def _clamped_after(graph, tensor: str) -> bool:
    """True when every reader of ``tensor`` clamps it at 0 itself (a Relu, or a Clip from 0 or more):
    the reference clamps there too (onnxruntime kept the activation and gave the op's output its range)."""
    readers = graph.consumers(tensor)
    return bool(readers) and tensor not in graph.outputs and all(
        r.op == "unary" and (r.fn in ("relu", "relu6") or (r.fn == "clip" and getattr(r, "lo", None) is not None and r.lo >= 0))
        for r in readers)


#: what :func:`clamp_at_zero_note` tells ``simulate`` to do
CLAMP_REMEDY_SIMULATE = ("Give the float model the file was quantized from as the reference to compare with it "
                         "(--reference-model FLOAT.onnx; run(reference_graph=...)), or quantize with "
                         "extra_options={'QDQKeepRemovableActivations': True} to keep them (the outputs are unchanged)")
#: ... and ``solve``, whose plans re-quantize the graph (its formats replace the clamping quantizers)
CLAMP_REMEDY_SOLVE = ("The plans re-quantize this graph, which lacks those activations: solve the float model the "
                      "file was quantized from instead, or one quantized with "
                      "extra_options={'QDQKeepRemovableActivations': True}")


def clamp_at_zero_note(graph, limit: int = 3, compares: str = "every later per-layer SQNR compares",
                       remedy: str = CLAMP_REMEDY_SIMULATE) -> str | None:
    """A note when integer activation quantizers whose range starts at exactly 0 (zero point at the
    format's lowest code) sit on the outputs of ops that can output negative values (convs, linears,
    matmuls, batch norms): the quantized run clamps those values at 0 and the float
    reference, which runs without quantizers, does not. That is the mark of onnxruntime's
    ``quantize_static`` having removed a Relu or Clip (its default for asymmetric activations: the
    op's output takes the activation's name and range), after which the reference is not the float
    model and every later per-layer SQNR compares with a model without those activations. None
    when there is no such quantizer. ``compares``: what compares with the reference (solve: its
    sensitivities); ``remedy``: what to do about it."""
    from hwsim import formats

    hits = []
    for op in graph.ops():
        if op.op not in _SIGNED_OUTPUT_OPS:  # (not adds: 1 + erf(x) is never negative, and is quantized so)
            continue
        spec = graph.tensors[op.outputs[0]].quant
        if spec.scale is None or not formats.get(spec.format).integer_codes:
            continue
        zp = np.zeros(1, np.int64) if spec.zero_point is None else np.asarray(spec.zero_point, np.int64)
        if np.all(zp == formats.get(spec.format).qmin) and not _clamped_after(graph, op.outputs[0]):
            hits.append(op)
    if not hits:
        return None
    named = ", ".join(f"{o.op} '{o.name}'" for o in hits[:limit]) + (f" and {len(hits) - limit} more" if len(hits) > limit else "")
    return (f"{len(hits)} activation quantizers cannot hold negative values yet follow ops that can output them ({named}): "
            "the simulation clamps those values at 0, the float reference (run without quantizers) does not, so "
            "their error against it counts the clamp. This is what onnxruntime's quantize_static leaves where it removed a "
            "Relu or Clip (the default for asymmetric activations); the reference then lacks those activations and "
            f"{compares} with a different model. {remedy}")


def _nonfinite_msg(label: str, ref, out: np.ndarray) -> str | None:
    if out.dtype.kind not in "fc" or np.isfinite(out).all():
        return None
    if ref is None:
        bad = int(out.size - np.isfinite(out).sum())
        return f"{label}: {bad} of {out.size} values are NaN or inf (no float reference was run)"
    ref = np.asarray(ref)
    if out.size and np.isnan(out).all():
        where = " (so is the float reference)" if np.isnan(ref).all() else " where the float reference is finite"
        return f"{label}: all {out.size} values are NaN{where}; no SQNR"
    new = ~np.isfinite(out) & np.isfinite(ref)
    if not new.any():
        return None
    return (f"{label}: {int(new.sum())} of {out.size} values are NaN or inf where the float "
            "reference is finite (overflow of the simulated format)")
