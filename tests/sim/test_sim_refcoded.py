"""The float reference's products with weights held as codes (hwsim.sim.refcoded): which products
take AMX-BF16, their values against the float32 BLAS route (float32-level, other last bits), and a
run's reference on either route (the fallback route runs everywhere: the switch flipped)."""

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from hwsim.graph.onnx import load_onnx
from hwsim.graph.quant import QuantSpec
from hwsim.kernels import amxgemm
from hwsim.sim import refcoded, run
from hwsim.sim.qspec import Coded

DATA = Path(__file__).parent.parent / "data"
amx = pytest.mark.skipif(not amxgemm.available(), reason="needs AMX-BF16 (amx-tile, amx-bf16), numba JIT")
F32 = SimpleNamespace(reference_dtype="float32")


@pytest.fixture
def rng():
    return np.random.default_rng(2026)


def _weight(rng, shape, fmt="int8", axis=None, zp=None):
    lo, hi = (-128, 127) if fmt == "int8" else (0, 255)
    codes = rng.integers(lo, hi, shape, endpoint=True).astype(np.int8 if fmt == "int8" else np.uint8)
    n = 1 if axis is None else shape[axis]
    scale = tuple(float(np.float32(v)) for v in rng.random(n) * 0.01 + 0.001)
    zero = None if zp is None else (zp,) * n
    spec = QuantSpec(format=fmt, scale=scale, zero_point=zero, granularity="tensor" if axis is None else "channel",
                     axis=axis)
    return Coded(codes, spec)


def test_which_products_apply(monkeypatch, rng):
    monkeypatch.setattr(amxgemm, "available", lambda: True)
    w = _weight(rng, (256, 300), axis=0)
    assert refcoded.applies(F32, w, 0)
    assert not refcoded.applies(F32, w, 1)  # per-channel along the other axis
    assert not refcoded.applies(SimpleNamespace(reference_dtype="float64"), w, 0)
    assert not refcoded.applies(F32, _weight(rng, (100, 300)), 0)  # too few output columns
    assert not refcoded.applies(F32, _weight(rng, (300, 100)), 0)  # too shallow
    assert not refcoded.applies(F32, np.ones((256, 64), np.float32), 0)
    group = Coded(w.codes, QuantSpec(format="int8", scale=(0.1,) * 256, granularity="group", axis=1, group_size=32))
    assert not refcoded.applies(F32, group, 0)
    wide = Coded(w.codes.astype(np.int16), QuantSpec(format="int16", scale=(0.1,)))
    assert not refcoded.applies(F32, wide, 0)
    monkeypatch.setattr(amxgemm, "available", lambda: False)
    assert not refcoded.applies(F32, w, 0)


@amx
@pytest.mark.parametrize("fmt, zp, axis, out_axis", [("int8", None, 0, 0), ("uint8", 128, None, 0),
                                                      ("uint8", 3, 1, 1), ("int8", -128, None, 1)])
def test_products_are_float32_level(rng, fmt, zp, axis, out_axis):
    shape = (320, 270) if out_axis == 0 else (270, 320)
    w = _weight(rng, shape, fmt, axis, zp)
    x = rng.standard_normal((37, 270)).astype(np.float32)
    assert refcoded.applies(F32, w, out_axis)
    got = refcoded.dot(x, w, out_axis)
    real = w.real() if out_axis == 1 else w.real().T
    want = x.astype(np.float64) @ real
    blas = x @ w.as_float32().T if out_axis == 0 else x @ w.as_float32()
    scale = np.abs(x.astype(np.float64)) @ np.abs(real)
    assert np.max(np.abs(got - want) / scale) < 2e-6 and np.max(np.abs(blas - want) / scale) < 2e-6
    assert not np.array_equal(got, blas)  # another route: other last bits


@amx
def test_a_zero_point_beyond_bfloat16_takes_blas(rng):
    codes = np.full((256, 300), 255, np.uint8)
    w = Coded(codes, QuantSpec(format="uint8", scale=(0.5,), zero_point=(-2,)))  # |q - z| = 257
    assert refcoded.applies(F32, w, 0) and refcoded.dot(np.ones((2, 300), np.float32), w, 0) is None


@pytest.fixture(scope="module")
def qstatic():
    return load_onnx(str(DATA / "tiny_bert_qstatic.onnx"), {"batch": 2, "sequence": 8})


def _run(g, monkeypatch, amx_on: bool):
    monkeypatch.setattr(refcoded, "MIN_COLUMNS", 1)  # the tiny BERT's linears are narrow and shallow
    monkeypatch.setattr(refcoded, "MIN_DEPTH", 1)
    if not amx_on:
        monkeypatch.setattr(amxgemm, "_host_amx", lambda: False)
    calls = []
    dot = refcoded.dot
    monkeypatch.setattr(refcoded, "dot", lambda *a: calls.append(1) or dot(*a))
    feeds = {"input_ids": np.random.default_rng(0).integers(0, 64, (2, 8)).astype(np.int64)}
    res = run(g, feeds, requant="onnxruntime")
    monkeypatch.undo()
    return res, len(calls)


def test_the_fallback_route_runs_without_amx(qstatic, monkeypatch):
    _, calls = _run(qstatic, monkeypatch, False)
    assert calls == 0


@amx
def test_a_run_on_either_route(qstatic, monkeypatch):
    """Same simulated outputs; reference values and per-layer metrics at float32 level apart."""
    on, calls = _run(qstatic, monkeypatch, True)
    off, _ = _run(qstatic, monkeypatch, False)
    assert calls > 0
    for name in on.outputs:
        np.testing.assert_array_equal(on.outputs[name], off.outputs[name])
    ref_on, ref_off = on.reference.values, off.reference.values
    moved = 0
    for name in dict(ref_off):
        a, b = np.asarray(ref_on[name], np.float64), np.asarray(ref_off[name], np.float64)
        if a.dtype.kind == "f" and a.size:
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5 * max(1.0, np.abs(b).max()))
            moved += not np.array_equal(a, b)
    assert moved > 0
    for la, lb in zip(on.layers, off.layers):
        assert la.name == lb.name and (la.sqnr_db == lb.sqnr_db or abs(la.sqnr_db - lb.sqnr_db) < 1e-3)


@amx
def test_column_blocks_on_the_pool_give_the_same_values(rng, monkeypatch):
    """A product large enough for refblas's column blocks runs them on the pool's threads (each
    asks for the tiles itself), the values those of one call on this thread."""
    from hwsim.sim import refblas

    monkeypatch.setattr(refblas, "cpu_count", lambda: 2)
    w = _weight(rng, (1536, 768), axis=0)
    x = rng.standard_normal((128, 768)).astype(np.float32)
    assert refblas.col_blocks(128, 768, 1536) is not None
    threads = set()
    run_tasks = refblas.run_tasks

    def spy(tasks):
        import threading

        run_tasks([lambda t=t: threads.add(threading.current_thread().name) or t() for t in tasks])

    monkeypatch.setattr(refblas, "run_tasks", spy)
    got = refcoded.dot(x, w, 0)
    assert any(name.startswith(refblas._PREFIX) for name in threads)
    scale = np.asarray(w.spec.scale, np.float32)
    np.testing.assert_array_equal(got, amxgemm.dot(x, refcoded._panels(w, 0), 1536, scale))


@pytest.mark.parametrize("op", ["linear", "matmul"])
def test_the_executors_reference_branch_on_either_route(rng, monkeypatch, op):
    """compute's linear (weight (N, K)) and matmul (weight (K, N)) references: the AMX product where
    it runs (a float64 operand split as it is), the float32 BLAS product with the switch off."""
    from hwsim.sim import compute

    ctx = SimpleNamespace(reference=True, reference_dtype="float32", deferred_sums=False)
    out_axis = 0 if op == "linear" else 1
    w = _weight(rng, (320, 270) if op == "linear" else (270, 320), "uint8", None, 120)
    x = rng.standard_normal((2, 9, 270))
    run_op = compute._linear if op == "linear" else compute._matmul
    blas = x.astype(np.float32) @ (w.as_float32().T if op == "linear" else w.as_float32())
    if amxgemm.available():
        got = run_op(ctx, None, [x, w])
        np.testing.assert_array_equal(got, refcoded.dot(x.reshape(-1, 270), w, out_axis).reshape(2, 9, 320))
        np.testing.assert_allclose(got, blas, rtol=1e-5, atol=1e-5 * np.abs(blas).max())
    monkeypatch.setattr(amxgemm, "_host_amx", lambda: False)
    np.testing.assert_allclose(run_op(ctx, None, [x, w]), blas, rtol=1e-6, atol=1e-6 * np.abs(blas).max())
