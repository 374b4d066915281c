"""The float reference's deferred conv / linear outputs (hwsim.sim.refvalues): the same float64
values as the plain ``y + bias``, the same float32 operand, the same metrics."""

import numpy as np
import pytest

from hwsim.graph.annotate import quantize_graph
from hwsim.graph.quant import QuantSpec
from hwsim.graph.zoo import load_model
from hwsim.sim import run
from hwsim.sim.metrics import coded_errors, errors
from hwsim.sim.qspec import Coded
from hwsim.sim.refvalues import Biased, RefValues, as_dtype


def _layouts(rng):
    nhwc = rng.standard_normal((2, 5, 6, 7)).astype(np.float32)
    yield nhwc.transpose(0, 3, 1, 2), 1  # channels-last memory seen as (N, C, H, W): the conv output
    yield rng.standard_normal((2, 7, 5, 6)).astype(np.float32), 1  # NCHW memory: channels not innermost
    yield rng.standard_normal((3, 4, 7)), -1  # a linear's (..., N) float64


@pytest.mark.parametrize("case", range(3))
def test_biased_values_equal_the_plain_sum(case):
    rng = np.random.default_rng(case)
    y, axis = list(_layouts(rng))[case]
    bias = rng.standard_normal(y.shape[axis])
    shape = [1] * y.ndim
    shape[axis] = -1
    want = y + bias.reshape(shape)  # what the reference computed before
    b = Biased(y, bias, axis)
    np.testing.assert_array_equal(b.as_float32(), want.astype(np.float32))
    np.testing.assert_array_equal(as_dtype(b, np.float32), want.astype(np.float32))
    np.testing.assert_array_equal(b.real(), want)
    np.testing.assert_array_equal(as_dtype(b, np.float64), want)
    codes = np.random.default_rng(9).integers(0, 256, y.shape).astype(np.uint8)
    if case == 0:  # the codes in the same channels-last memory: the one-pass metrics
        codes = np.ascontiguousarray(codes.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    coded = Coded(codes, QuantSpec(format="uint8", scale=(0.0625,), zero_point=(100,)))
    np.testing.assert_allclose(coded_errors(Biased(y, bias, axis), coded), errors(want, coded.real()), rtol=1e-12)


def test_ref_values_hand_out_float64_arrays():
    y = np.arange(12, dtype=np.float32).reshape(3, 4)
    vals = RefValues({"a": Biased(y, np.ones(4), -1), "b": np.zeros(2)})
    assert isinstance(vals.raw("a"), Biased)
    assert vals["a"].dtype == np.float64 and np.array_equal(vals["a"], y + 1.0)
    assert set(vals) == {"a", "b"} and all(isinstance(v, np.ndarray) for v in dict(vals).values())


def test_conv_reference_values_and_metrics_as_computed_plainly():
    """The reference values (the zoo's linear has a bias) are read as float64 arrays, the output
    layer's SQNR / MSE equal errors() of the values, and reading every value changes no metric of
    a run that reuses the reference (the bench_sim QDQ CNNs' convs with biases are compared
    element for element in benchmarks/RESULTS.md)."""
    g = quantize_graph(load_model("resnet18:batch=1,resolution=32"), "int8", "int8")
    x = {n: np.random.default_rng(3).standard_normal(g.tensors[n].shape).astype(np.float32) for n in g.inputs}
    res = run(g, x)
    vals = res.reference.values
    assert any(isinstance(vals.raw(op.outputs[0]), Biased) for op in g.ops() if op.op == "linear")
    assert all(isinstance(vals[n], np.ndarray) and vals[n].dtype == np.float64 for n in vals)
    for e, op in zip(res.layers, res.graph.ops()):
        want = errors(vals[op.outputs[0]], np.asarray(res.output_values.get(op.outputs[0], np.nan)))
        if op.outputs[0] in res.graph.outputs:
            np.testing.assert_allclose((e.sqnr_db, e.mse), want, rtol=1e-9)
    again = run(g, x, reference=res.reference)  # after every value was read as float64: the same metrics
    assert [(e.sqnr_db, e.mse) for e in again.layers] == [(e.sqnr_db, e.mse) for e in res.layers]


@pytest.mark.parametrize("granularity", ["tensor", "channel"])
@pytest.mark.parametrize("fmt", ["int8", "uint8", "int16"])
def test_coded_float32_operand_equals_rounded_reals(granularity, fmt):
    """Weights' float32 operand made from the codes in float32 equals their float64 reals
    rounded to float32 (what the reference read before), float32 and float64 scales alike."""
    rng = np.random.default_rng(4)
    info = np.iinfo(fmt)
    codes = rng.integers(info.min, info.max, (6, 3, 3, 3), endpoint=True).astype(fmt)
    for scales in (rng.random(6).astype(np.float32) * 0.1, rng.random(6) * 0.1):  # float32-exact, then not
        zps = rng.integers(0, 20, 6) if fmt == "uint8" else np.zeros(6, np.int64)
        if granularity == "tensor":
            spec = QuantSpec(format=fmt, scale=(float(scales[0]),), zero_point=(int(zps[0]),))
        else:
            spec = QuantSpec(format=fmt, scale=tuple(map(float, scales)), zero_point=tuple(map(int, zps)),
                             granularity="channel", axis=0)
        c = Coded(codes, spec)
        want = Coded(codes, spec).real().astype(np.float32)
        np.testing.assert_array_equal(c.as_float32(), want)
        np.testing.assert_array_equal(as_dtype(Coded(codes, spec), np.float32), want)


@pytest.mark.parametrize("other", ["biased", "f64", "f32", "nchw", "broadcast"])
@pytest.mark.parametrize("swap", [False, True])
def test_add_of_biased_equals_sum_of_reals(other, swap):
    """refvalues.add gives real_of(a) + real_of(b) exactly, and declines what it cannot read in one
    memory order (a plain NCHW array against channels-last data, a broadcast)."""
    from hwsim.sim.qspec import real_of
    from hwsim.sim.refvalues import add

    rng = np.random.default_rng(4)
    last = lambda a: np.ascontiguousarray(a.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)  # noqa: E731
    a = Biased(last(rng.standard_normal((2, 6, 5, 4)).astype(np.float32)), rng.standard_normal(6), 1)
    b = {"biased": Biased(last(rng.standard_normal((2, 6, 5, 4)).astype(np.float32)), rng.standard_normal(6), 1),
         "f64": last(rng.standard_normal((2, 6, 5, 4))), "f32": last(rng.standard_normal((2, 6, 5, 4)).astype(np.float32)),
         "nchw": rng.standard_normal((2, 6, 5, 4)), "broadcast": rng.standard_normal((1, 6, 1, 1))}[other]
    x, y = (b, a) if swap else (a, b)
    got = add(x, y)
    if other in ("nchw", "broadcast"):
        assert got is None
        return
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, real_of(x) + real_of(y))


@pytest.mark.parametrize("precision", ["float32", "float64"])
def test_float32_constants_stay_float32_with_the_values_of_their_float64_copies(monkeypatch, precision):
    """The reference keeps a float32 constant as a Widened (float64 on each read, itself as the
    float32 operand), except one handed to an executor of deferred inputs other than conv2d /
    linear / matmul; every reference value equals the one made from float64 copies of the
    constants (the former const_value)."""
    from hwsim.sim import refvalues
    from hwsim.sim.qspec import const_value
    from hwsim.sim.refvalues import Widened, constants
    from hwsim.sim.runner import ensure_weights, float_reference

    g = ensure_weights(load_model("resnet18:batch=2,resolution=32"), 0)
    x = {n: np.random.default_rng(4).standard_normal(g.tensors[n].shape).astype(np.float32) for n in g.inputs}
    new = float_reference(g, dict(x), precision=precision).values
    monkeypatch.setattr(refvalues, "constants", lambda graph: {n: const_value(t) for n, t in graph.tensors.items()
                                                               if t.data is not None})
    old = float_reference(g, dict(x), precision=precision).values
    w = g.ops()[0].inputs[1]
    assert isinstance(new.raw(w), Widened) and as_dtype(new.raw(w), np.float32) is g.tensors[w].data
    assert new[w].dtype == np.float64 and np.array_equal(new[w], old[w])
    assert set(new) == set(old) and all(np.array_equal(new[n], old[n]) for n in old)
    add = next(op for op in g.ops() if op.op == "binary")  # an add handed deferred inputs reading a constant
    g2 = g.copy()
    g2.set_data(add.inputs[1], np.ones(g.tensors[add.inputs[1]].shape, np.float32))
    assert not isinstance(constants(g2)[add.inputs[1]], Widened)


@pytest.mark.parametrize("vshape", [(7,), (1, 1, 7)])
@pytest.mark.parametrize("vdtype", [np.float64, np.float32])
@pytest.mark.parametrize("swap", [False, True])
def test_product_plus_bias_vector_is_biased_with_the_values_of_the_plain_sum(vshape, vdtype, swap):
    """A bias-less product (MatMul) stays float32 (Product); Add of a bias vector along its last
    axis gives a Biased with the values of widening it and adding the vector, and the same
    metrics; anything else is left to the plain sum."""
    from hwsim.sim.refvalues import Product, add

    rng = np.random.default_rng(7)
    y = rng.standard_normal((3, 4, 7)).astype(np.float32)
    y[0, 0, 0] = -0.0
    p = Product(y)
    v = rng.standard_normal(vshape).astype(vdtype)
    assert np.array_equal(np.signbit(p.real()), np.signbit(y.astype(np.float64))) and p.as_float32() is y
    got = add(v, p) if swap else add(p, v)
    assert isinstance(got, Biased)
    want = y.astype(np.float64) + v
    np.testing.assert_array_equal(got.real(), want)
    np.testing.assert_array_equal(as_dtype(got, np.float32), want.astype(np.float32))
    spec = QuantSpec(format="uint8", scale=(0.03,), zero_point=(128,))
    codes = Coded(rng.integers(0, 256, y.shape).astype(np.uint8), spec)
    np.testing.assert_allclose(coded_errors(got, codes), errors(want, codes.real()), rtol=1e-12)
    assert coded_errors(p, codes) == coded_errors(y.astype(np.float64), codes)  # the same sums, in the same order
    assert add(p, rng.standard_normal((4, 7))) is None and add(p, rng.standard_normal(4)) is None
    assert add(p, p) is None
