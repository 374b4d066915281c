"""Reading .npz inputs is bounded (issue 12): only the members needed are decompressed, every
member's .npy header is checked against its size in the zip before any array is allocated, and a
member larger than the memory available is refused with advice about the file, not the model."""

from __future__ import annotations

import io
import tracemalloc
import zipfile

import numpy as np
import pytest

from hwsim.cli import main
from hwsim.errors import InputDataError
from hwsim.sim import memory
from hwsim.sim.npzio import npz_names, read_npz

GEMM = "gemm:m=2,k=8,n=4"


def _x():
    return np.random.default_rng(0).standard_normal((2, 8)).astype(np.float32)


@pytest.fixture
def bomb(tmp_path):
    """A used 64-byte array and an unused member that inflates to 64 MiB (the report: 2 GiB)."""
    p = tmp_path / "bomb.npz"
    np.savez_compressed(p, input=_x(), junk=np.zeros(16 * 2**20, np.float32))
    assert p.stat().st_size < 2**20
    return p


def _peak(fn):
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_only_needed_members_are_read(bomb):
    got = {}
    peak = _peak(lambda: got.update(read_npz(str(bomb), names=["input"])))
    assert list(got) == ["input"] and np.array_equal(got["input"], _x())
    assert peak < 8 * 2**20, peak
    assert npz_names(str(bomb)) == ["input", "junk"]


def test_simulate_refuses_unknown_member_without_inflating_it(bomb, capsys):
    peak = _peak(lambda: main(["simulate", GEMM, "--weights", "int8", "--activations", "int8", "--inputs", str(bomb)]))
    err = capsys.readouterr().err
    assert "unknown input name(s) ['junk']" in err, err
    assert peak < 48 * 2**20, peak


def _npz_with_header(tmp_path, header_shape, data: bytes):
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "<f4", "fortran_order": False, "shape": header_shape})
    p = tmp_path / "liar.npz"
    with zipfile.ZipFile(p, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("input.npy", buf.getvalue() + data)
    return p


def test_lying_header_refused_before_allocation(tmp_path, capsys):
    """The header claims 4 TB; the member holds 64 bytes. Was 'out of memory ... use smaller model
    parameters or --shape values' (advice about the wrong thing)."""
    p = _npz_with_header(tmp_path, (10**12,), _x().tobytes())
    with pytest.raises(InputDataError, match=r"member 'input': its header says shape \(1000000000000,\) float32"):
        read_npz(str(p))
    assert main(["simulate", GEMM, "--inputs", str(p)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "out of memory" not in err and "liar.npz" in err, err


def test_header_shorter_than_data_refused(tmp_path):
    p = _npz_with_header(tmp_path, (2,), _x().tobytes())
    with pytest.raises(InputDataError, match="holds 64 bytes of data"):
        read_npz(str(p))


def test_member_larger_than_memory_refused(bomb, monkeypatch):
    monkeypatch.setattr(memory, "available_bytes", lambda: 2**20)
    with pytest.raises(InputDataError, match=r"member 'junk' is 67.1 MB uncompressed; about 1.05 MB"):
        read_npz(str(bomb))
    assert list(read_npz(str(bomb), names=["input"])) == ["input"]


def test_calibration_reads_only_its_members(bomb):
    from hwsim.graph.zoo import load_model
    from hwsim.solve.data import load_npz

    g = load_model(GEMM)
    peak = _peak(lambda: load_npz(bomb, g))
    assert peak < 8 * 2**20, peak
