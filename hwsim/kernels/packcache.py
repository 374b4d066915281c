"""Packed forms of repeated operands (constant weights), kept between calls and found by content.

A GEMM kernel rearranges its right-hand operand into panels before multiplying (for a 4096 x 4096
weight about a third of the product's time). A weight is the same on every call, so the packed
form is kept: :func:`packed` returns ``make(b)`` for an array whose bytes, dtype and shape equal
those of an array it packed before with the same ``tag``, and calls ``make`` otherwise.

Keyed safely: an entry holds a private copy of the operand it was made from, and is used only after
a byte-for-byte comparison of the new operand with that copy (a memory-speed pass of every byte,
about 1% of packing). Changing an array in place, reusing its memory or its ``id``, or passing an equal array
through another object can therefore never return a stale pack. An operand is stored the second
time its content is seen (the first sighting records only a small fingerprint), so operands used
once (activations) cost no copy; entries are dropped least recently used first beyond
``LIMIT_BYTES``. Plain Python and numpy; thread-safe.

Frozen operands are found by identity instead: an array whose every array on its ``base`` chain is
read-only and whose memory is an immutable ``bytes`` object (:func:`frozen` makes one; numpy
refuses to make such an array writeable again) can never change, so the same memory seen through
the same view (address, shape, strides, type) holds the same bytes. Its entry keeps that ``bytes``
object alive instead of a copy (its ``id`` stays its own while the entry exists), and a lookup
costs neither the fingerprint's sampled reads nor the comparison: for onnxruntime-quantized
BERT-shaped layers those two were ~13 ms of CPU per simulate run over 57 MB of weights (both
threads), read again on every run. The importer's constants are frozen (:mod:`hwsim.graph.onnx_ctx`),
as are the packed forms that are packed again (a conv weight's (K, O) matrix).
"""

import threading
import zlib
from collections import OrderedDict

import numpy as np

LIMIT_BYTES = 256 * 2**20  # copies, frozen operands' memory (once each) and packed forms kept, at most
_SEEN_MAX = 4096  # fingerprints remembered for operands seen once
_SAMPLE = 4096  # elements read for a fingerprint

_lock = threading.Lock()
_entries: OrderedDict = OrderedDict()  # fingerprint -> (copy of the operand, packed, bytes held)
_seen: OrderedDict = OrderedDict()  # fingerprints seen once
_held = [0]
_roots: dict = {}  # id of a frozen operand's bytes -> [the bytes, entries holding them]: counted once


def _fingerprint(b: np.ndarray, tag) -> tuple:
    flat = b.reshape(-1)
    sample = np.ascontiguousarray(flat[:: max(1, flat.size // _SAMPLE)])
    return tag, b.dtype.str, b.shape, zlib.crc32(sample.view(np.uint8))


def _same_bytes(x: np.ndarray, y: np.ndarray) -> bool:
    """True if flat C-contiguous ``x`` and ``y`` hold the same bytes: every byte compared, eight at
    a time when the length allows (2.2 ms instead of 5 ms for 16 MiB here)."""
    if x.nbytes != y.nbytes:
        return False
    wide = np.uint64 if x.nbytes % 8 == 0 else np.uint8
    return bool(np.array_equal(x.view(np.uint8).view(wide), y.view(np.uint8).view(wide)))


def _nbytes(packed) -> int:
    return sum(getattr(p, "nbytes", 0) for p in packed) if isinstance(packed, (list, tuple)) \
        else getattr(packed, "nbytes", 0)


def packed(b: np.ndarray, tag, make):
    """``make(b)``, or the result of an earlier ``make`` on an array equal to ``b`` byte for byte.

    Parameters
    ----------
    b : np.ndarray
        C-contiguous operand.
    tag : hashable
        Everything besides ``b`` that ``make`` depends on (kernel kind, chunking).
    make : callable
        ``make(b)`` -> the packed form: an array or a list of arrays, never written to afterwards.
    """
    root = _frozen_root(b)
    if root is not None:
        return _packed_frozen(b, root, tag, make)
    key = _fingerprint(b, tag)
    with _lock:
        hit = _entries.get(key)
        if hit is not None and _same_bytes(hit[0], b.reshape(-1)):
            _entries.move_to_end(key)
            return hit[1]
        keep = key in _seen or hit is not None
        if not keep:
            _seen[key] = None
            if len(_seen) > _SEEN_MAX:
                _seen.popitem(last=False)
    out = make(b)
    size = b.nbytes + _nbytes(out)
    if keep and size <= LIMIT_BYTES // 4:
        with _lock:
            _drop(_entries.pop(key, None))
            _held[0] += size
            _entries[key] = (b.reshape(-1).copy(), out, size)
            _seen.pop(key, None)
            _evict()
    return out


def _drop(entry) -> None:
    """Take an entry's bytes off the count (with ``_lock`` held): its own, and its frozen
    operand's memory with the last entry that keeps it."""
    if entry is None:
        return
    _held[0] -= entry[2]
    if type(entry[0]) is bytes:
        held = _roots[id(entry[0])]
        held[1] -= 1
        if not held[1]:
            del _roots[id(entry[0])]
            _held[0] -= len(entry[0])


def _evict() -> None:
    """Drop the least recently used entries while more than ``LIMIT_BYTES`` are held."""
    while _held[0] > LIMIT_BYTES and _entries:
        _drop(_entries.popitem(last=False)[1])


def derived(b: np.ndarray, tag, make):
    """``make(b)``: kept and found by identity for a frozen ``b`` (as :func:`packed` keeps its
    packed forms), made anew for any other array (no fingerprint, no comparison: for values cheap
    to make, a constant's real values or a check of its codes, that a simulate run would otherwise
    make again for every constant). ``make``'s result is shared: an array must be read-only."""
    root = _frozen_root(b)
    return make(b) if root is None else _packed_frozen(b, root, tag, make)


def frozen(a: np.ndarray) -> np.ndarray:
    """``a``'s values as a read-only C-contiguous array over an immutable ``bytes`` object (one
    copy; ``a`` itself when it already is one), which :func:`packed` finds by identity. Arrays of
    Python objects are returned as they are (they have no bytes to freeze)."""
    a = np.asarray(a)
    if a.dtype.hasobject or (a.flags.c_contiguous and _frozen_root(a) is not None):
        return a
    return np.frombuffer(a.tobytes(order="C"), a.dtype).reshape(a.shape)


def _frozen_root(b: np.ndarray):
    """The ``bytes`` object holding ``b``'s memory when every array on its ``base`` chain is
    read-only, else None. Nothing can write that memory: numpy makes every array over ``bytes``
    read-only and refuses to make it writeable (the check of each array's flag is a guard only)."""
    x = b
    while isinstance(x, np.ndarray):
        if x.flags.writeable:
            return None
        x = x.base
    return x if type(x) is bytes else None


def _packed_frozen(b: np.ndarray, root: bytes, tag, make):
    """:func:`packed` of a frozen ``b`` (memory ``root``): keyed by the view's place in ``root``,
    stored at its first sighting (no copy to make), the entry holding ``root`` itself."""
    key = (tag, "frozen", id(root), b.__array_interface__["data"][0], b.shape, b.strides, b.dtype.str)
    with _lock:
        hit = _entries.get(key)
        if hit is not None and hit[0] is root:  # the entry keeps root alive: its id is root's alone
            _entries.move_to_end(key)
            return hit[1]
    out = make(b)
    size = _nbytes(out)  # the operand's memory is counted once for all entries that keep it
    if size + len(root) <= LIMIT_BYTES // 4:
        with _lock:
            _drop(_entries.pop(key, None))
            held = _roots.setdefault(id(root), [root, 0])
            if not held[1]:
                _held[0] += len(root)
            held[1] += 1
            _held[0] += size
            _entries[key] = (root, out, size)
            _evict()
    return out


def clear() -> None:
    """Forget every kept pack and fingerprint."""
    with _lock:
        _entries.clear()
        _seen.clear()
        _roots.clear()
        _held[0] = 0
