"""Reading ``.npz`` files with bounds: never unpickling, only the members asked for, and every
member's ``.npy`` header checked against the member's size in the zip before an array is made.

A compressed member can inflate a thousandfold, and a ``.npy`` header can claim any shape; numpy's
``np.load`` allocates what the header says. Here a member is refused (``InputDataError`` naming the
file and member) when its header disagrees with the bytes it holds, or when it is larger than the
memory available; members that are not asked for are never decompressed.
"""

from __future__ import annotations

import math
import os
import zipfile

import numpy as np

from hwsim.errors import InputDataError
from hwsim.sim import memory
from hwsim.render import si
from hwsim.yamlio import brief

_FIX = "write it with numpy.savez(path, name=array, ...) using numeric arrays"


def _open(path: str, what: str) -> zipfile.ZipFile:
    if os.path.isdir(path):
        raise InputDataError(f"{what} file {path!r} is a directory; give the path of an .npz file")
    if not os.path.exists(path):
        raise InputDataError(f"{what} file {path!r} not found")
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise InputDataError(f"cannot read {what} file {path!r}: not a numpy .npz (zip) archive ({exc}); "
                             f"{_FIX}") from None


def _members(z: zipfile.ZipFile) -> dict[str, zipfile.ZipInfo]:
    """Array name -> zip entry (``np.savez`` stores ``name.npy``)."""
    return {(i.filename[:-4] if i.filename.endswith(".npy") else i.filename): i
            for i in z.infolist() if not i.is_dir()}


def npz_names(path: str, what: str = "inputs") -> list[str]:
    """Array names in an ``.npz`` file, in file order, without decompressing anything."""
    with _open(path, what) as z:
        return list(_members(z))


def read_npz(path: str, what: str = "inputs", names=None) -> dict[str, np.ndarray]:
    """Arrays of an ``.npz`` file; only ``names`` (those present) when given.

    Raises
    ------
    InputDataError
        Unreadable file, pickled (object) arrays, a header that disagrees with the member's size,
        or members larger than the memory available; the message names file and member.
    """
    with _open(path, what) as z:
        members = _members(z)
        wanted = members if names is None else {k: members[k] for k in names if k in members}
        _check_sizes(path, what, wanted)
        out = {}
        for name, info in wanted.items():
            try:
                out[name] = _read_member(z, info, name, path, what)
            except InputDataError:
                raise
            except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
                raise InputDataError(f"cannot read {what} file {path!r}, member {name!r} ({exc}); {_FIX}") from None
        return out


def _check_sizes(path: str, what: str, wanted: dict[str, zipfile.ZipInfo]) -> None:
    free = memory.available_bytes()
    free = math.inf if free is None else free
    for name, info in wanted.items():
        if info.file_size > free:
            raise InputDataError(f"{what} file {path!r}: member {name!r} is {si(info.file_size, 'B')} uncompressed; "
                                 f"about {si(free, 'B')} of memory is available. Remove it from the file or "
                                 "use fewer samples")
    total = sum(i.file_size for i in wanted.values())
    if total > free:
        raise InputDataError(f"{what} file {path!r}: the arrays needed are {si(total, 'B')} uncompressed; about "
                             f"{si(free, 'B')} of memory is available. Use fewer samples")


def _read_member(z: zipfile.ZipFile, info: zipfile.ZipInfo, name: str, path: str, what: str) -> np.ndarray:
    fmt = np.lib.format
    with z.open(info) as f:
        version = fmt.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = fmt.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, fortran, dtype = fmt.read_array_header_2_0(f)
        else:
            raise InputDataError(f"{what} file {path!r}, member {name!r}: .npy version {version} is not read; {_FIX}")
        if dtype.hasobject:
            raise InputDataError(f"{what} file {path!r} holds an object (pickled) array {name!r}, which hwsim "
                                 f"does not load; {_FIX}")
        held = info.file_size - f.tell()
        need = math.prod(shape) * dtype.itemsize
        if need != held:
            raise InputDataError(f"{what} file {path!r}, member {name!r}: its header says shape {brief(shape)} "
                                 f"{dtype} ({si(need, 'B')}) but it holds {held} bytes of data; the file is "
                                 f"corrupt, {_FIX}")
    with z.open(info) as f:
        return fmt.read_array(f, allow_pickle=False)


def write_npz(path: str, arrays: dict[str, np.ndarray]) -> None:
    """``np.savez`` at exactly ``path`` (no '.npz' appended), byte-reproducible: members in the
    given order with a fixed timestamp (np.savez stamps the current time, so equal outputs differed)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        for name, a in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            with z.open(info, "w", force_zip64=True) as f:
                np.lib.format.write_array(f, np.asanyarray(a), allow_pickle=False)
