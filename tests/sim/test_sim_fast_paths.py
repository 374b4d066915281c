"""The simulator's speed paths give the same numbers as the plain ones.

``metrics.errors`` (one difference pass) against ``sqnr_db`` / ``mse``; ``run(metrics=False)``
against the default run; a run reusing a reference (memoised calibration) against a fresh one.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from hwsim.graph.annotate import quantize_graph
from hwsim.graph.zoo import load_model
from hwsim.sim import run
from hwsim.sim.metrics import errors, mse, sqnr_db

_VALUES = st.floats(allow_nan=True, allow_infinity=True, width=64)


def _same(a: float, b: float) -> bool:
    return (np.isnan(a) and np.isnan(b)) or a == b


@settings(max_examples=200, deadline=None)
@given(arrays(np.float64, st.integers(0, 12), elements=_VALUES), st.data())
def test_errors_equal_sqnr_and_mse(ref, data):
    out = data.draw(st.one_of(st.just(ref.copy()), arrays(np.float64, ref.shape, elements=_VALUES)))
    with np.errstate(all="ignore"):  # huge draws overflow ref**2 in both, alike
        s, m = errors(ref, out)
        assert _same(s, sqnr_db(ref, out)) and _same(m, mse(ref, out))


def test_errors_zero_signal_and_exact_match():
    assert errors(np.zeros(3), np.ones(3)) == (float("-inf"), 1.0)
    assert errors(np.arange(3.0), np.arange(3.0)) == (float("inf"), 0.0)


def _graph_and_inputs():
    g = quantize_graph(load_model("conv2d:batch=2,c=4,k=8,h=10,w=10"), "int8", "int8")
    x = {n: np.random.default_rng(3).standard_normal(g.tensors[n].shape).astype(np.float32) for n in g.inputs}
    return g, x


def test_metrics_false_same_outputs_no_layers():
    g, x = _graph_and_inputs()
    full, lean = run(g, x), run(g, x, metrics=False)
    assert full.layers and lean.layers == []
    for n in full.outputs:
        np.testing.assert_array_equal(full.outputs[n], lean.outputs[n])


def test_reused_reference_calibrates_as_a_fresh_run():
    g, x = _graph_and_inputs()
    first = run(g, x)
    assert first.reference.calibrated  # activation scales were memoised on the reference
    again = run(g, x, reference=first.reference)
    assert [t.quant for t in again.graph.tensors.values()] == [t.quant for t in first.graph.tensors.values()]
    for n in first.outputs:
        np.testing.assert_array_equal(first.outputs[n], again.outputs[n])
    assert [(e.sqnr_db, e.mse) for e in again.layers] == [(e.sqnr_db, e.mse) for e in first.layers]


def _conv_pool_qdq(path):
    """A QDQ model by onnxruntime's quantize_static: conv + relu, max pool 3x3 / 2 padded by 1
    (the ResNet stem's), conv."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    rng = np.random.default_rng(0)
    w = lambda name, *shape: numpy_helper.from_array((rng.standard_normal(shape) * 0.3).astype(np.float32), name)  # noqa: E731
    n = helper.make_node
    nodes = [n("Conv", ["x", "w1", "b1"], ["c1"], pads=[1] * 4), n("Relu", ["c1"], ["r1"]),
             n("MaxPool", ["r1"], ["p1"], kernel_shape=[3, 3], strides=[2, 2], pads=[1] * 4),
             n("Conv", ["p1", "w2", "b2"], ["y"], pads=[1] * 4)]
    shape = (2, 3, 13, 13)
    graph = helper.make_graph(nodes, "pool", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              [w("w1", 8, 3, 3, 3), w("b1", 8), w("w2", 8, 8, 3, 3), w("b2", 8)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    onnx.save(model, str(path) + ".f.onnx")
    data = iter([{"x": rng.standard_normal(shape).astype(np.float32)} for _ in range(2)])

    class Reader:
        def get_next(self):
            return next(data, None)

    quantize_static(str(path) + ".f.onnx", str(path), Reader(), quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    return rng.standard_normal(shape).astype(np.float32)


def test_max_pool_on_codes_and_on_biased_reference_equal_the_real_path(tmp_path, monkeypatch):
    """The max pool of codes (output spec = input spec) and of a reference product plus its bias
    (bias added after the max) give the outputs and per-layer errors of pooling real values."""
    from hwsim.graph.onnx import load_onnx
    from hwsim.sim import elementwise, refvalues

    x = _conv_pool_qdq(tmp_path / "q.onnx")
    g = load_onnx(str(tmp_path / "q.onnx"), {})
    fast = run(g, {"x": x}, requant="onnxruntime")
    seen = []
    real_pool = elementwise._max_pool

    def plain(ctx, op, v):  # codes and Biased handed over as float64 reals (as before the fast paths)
        seen.append(type(v).__name__)
        v = v.real() if isinstance(v, refvalues.Biased) else elementwise.ortfused.dequantized_value(ctx, op.inputs[0], v)
        return real_pool(ctx, op, v)

    monkeypatch.setattr(elementwise, "_max_pool", plain)
    slow = run(g, {"x": x}, requant="onnxruntime")
    assert sorted(set(seen)) == ["Biased", "Coded"]  # both fast paths were there to take
    for n in fast.outputs:
        np.testing.assert_array_equal(fast.outputs[n], slow.outputs[n])
    # the same sums in another order (metrics.coded_errors reads a Biased in one pass)
    np.testing.assert_allclose([(e.sqnr_db, e.mse) for e in fast.layers], [(e.sqnr_db, e.mse) for e in slow.layers],
                               rtol=1e-12)


def test_reference_precision_float32_same_outputs_close_sqnr():
    """A float32 reference (dot products on float32 BLAS) changes no output and moves per-layer
    SQNR far less than the printed precision; calibration still runs on a float64 reference."""
    g, x = _graph_and_inputs()
    r64 = run(g, x, reference_precision="float64")
    cal = run(g, x, reference_precision="float32")  # scales missing: calibrated on float64
    assert cal.reference.precision == "float64"
    assert [(e.sqnr_db, e.mse) for e in cal.layers] == [(e.sqnr_db, e.mse) for e in r64.layers]
    fixed = r64.graph  # scales filled: the float32 reference is used
    a, b = run(fixed, x, reference_precision="float64"), run(fixed, x, reference_precision="float32")
    assert b.reference.precision == "float32" and a.reference.precision == "float64"
    for n in a.outputs:
        np.testing.assert_array_equal(a.outputs[n], b.outputs[n])
    assert any(e.op == "conv2d" for e in a.layers)
    for ea, eb in zip(a.layers, b.layers):
        assert abs(ea.sqnr_db - eb.sqnr_db) < 1e-4, (ea, eb)


def test_reference_precision_refuses_unknown():
    import pytest

    from hwsim.errors import ConfigError

    g, x = _graph_and_inputs()
    with pytest.raises(ConfigError, match="float32 or float64"):
        run(g, x, reference_precision="float16")


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(["int8", "uint8", "int4", "int16"]), st.booleans(), st.integers(0, 2**31), st.floats(-30, 10))
def test_stored_codes_skip_quantize_same_values(fmt_name, per_channel, seed, log2_scale):
    """Unpruned codes on their own grid are returned as their reals without quantizing: the
    values equal prepare_weight's (which quantizes them), for scales over 40 octaves."""
    from hwsim import formats
    from hwsim.graph.ir import Tensor
    from hwsim.graph.quant import QuantSpec
    from hwsim.sim import qspec

    rng = np.random.default_rng(seed)
    fmt = formats.get(fmt_name)
    dtype = {"int8": np.int8, "uint8": np.uint8, "int4": np.int8, "int16": np.int16}[fmt_name]
    data = rng.integers(fmt.qmin, fmt.qmax + 1, (6, 5)).astype(dtype)
    n = 6 if per_channel else 1
    scale = tuple(float(np.float32(2.0 ** log2_scale * rng.uniform(1, 2))) for _ in range(n))
    zp = tuple(int(z) for z in rng.integers(fmt.qmin, fmt.qmax + 1, n))
    spec = QuantSpec(format=fmt_name, scale=scale, zero_point=zp, granularity="channel" if per_channel else "tensor",
                     axis=0 if per_channel else None)
    t = Tensor(name="w", shape=data.shape, dtype=str(np.dtype(dtype)), role="weight", quant=spec, data=data)
    codes = qspec.grid_codes(t)
    assert codes is not None and np.array_equal(codes.astype(np.int64), data.astype(np.int64))
    fast, _ = qspec.prepare_constant(t, None)
    slow, _ = qspec.prepare_weight(qspec.const_real(t), spec, None, 0, True)
    np.testing.assert_array_equal(fast, slow)


def test_refblas_products_match_numpy_and_repeat():
    """The float reference's row-block products equal numpy's to float rounding and are the
    same from call to call (blocks do not depend on threads)."""
    from hwsim.sim import refblas

    rng = np.random.default_rng(5)
    for dt in (np.float32, np.float64):
        a = rng.standard_normal((1000, 300)).astype(dt)
        b = rng.standard_normal((300, 70)).astype(dt)
        got = refblas.dot(a, b)
        assert got.dtype == dt and np.array_equal(got, refblas.dot(a, b))
        np.testing.assert_allclose(got, a.astype(np.float64) @ b.astype(np.float64), rtol=1e-4, atol=1e-4)
        s, t = rng.standard_normal((2, 3, 40, 30)).astype(dt), rng.standard_normal((3, 30, 20)).astype(dt)
        np.testing.assert_allclose(refblas.matmul(s, t), np.matmul(s, t), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(refblas.matmul(s[0, 0], t[0]), s[0, 0] @ t[0], rtol=1e-5, atol=1e-5)


def test_refblas_column_blocks_match_numpy_and_do_not_depend_on_threads(monkeypatch):
    """wide_dot multiplies a left operand of at most ROWS_PER_TASK rows in blocks of columns (a
    transformer's linears at batch 1): numpy's product to float rounding, the same on one thread."""
    from hwsim.sim import refblas

    rng = np.random.default_rng(6)
    a = rng.standard_normal((100, 300)).astype(np.float32)
    b = rng.standard_normal((1000, 300)).astype(np.float32).T  # a transposed weight, as the linears pass it
    assert len(refblas.col_blocks(100, 300, 1000)) == 3
    got = refblas.wide_dot(a, b)
    np.testing.assert_allclose(got, a.astype(np.float64) @ b.astype(np.float64), rtol=1e-4, atol=1e-4)
    monkeypatch.setattr(refblas, "cpu_count", lambda: 1)
    assert np.array_equal(got, refblas.wide_dot(a, b))
    assert refblas.col_blocks(refblas.ROWS_PER_TASK + 1, 300, 1000) is None and refblas.col_blocks(100, 30, 100) is None


def test_reference_weight_float32_kept_read_only_and_follows_the_codes():
    """The reference's float32 weights from codes equal Coded.as_float32, are kept between runs
    (the same array the third time), read-only, and new codes give new values."""
    from hwsim.graph.quant import QuantSpec
    from hwsim.sim.compute import _ref_weight_f32
    from hwsim.sim.qspec import Coded

    codes = np.random.default_rng(7).integers(-128, 128, (96, 40)).astype(np.int8)
    spec = QuantSpec(format="int8", scale=(0.0234375,), zero_point=(0,))
    first = _ref_weight_f32(Coded(codes, spec))
    np.testing.assert_array_equal(first, Coded(codes, spec).as_float32())
    kept = _ref_weight_f32(Coded(codes.copy(), spec))
    assert _ref_weight_f32(Coded(codes.copy(), spec)) is kept and not kept.flags.writeable
    codes[0, 0] ^= 1
    np.testing.assert_array_equal(_ref_weight_f32(Coded(codes, spec)), Coded(codes, spec).as_float32())
    other = spec.model_copy(update={"scale": (0.5,)})
    np.testing.assert_array_equal(_ref_weight_f32(Coded(codes, other)), Coded(codes, other).as_float32())


def _coded(codes, zp, scale, granularity="tensor"):
    from hwsim.graph.quant import QuantSpec
    from hwsim.sim.qspec import Coded

    if granularity == "tensor":
        spec = QuantSpec(format="uint8", scale=(scale,), zero_point=(zp,))
    else:
        c = codes.shape[1]
        spec = QuantSpec(format="uint8", scale=(scale,) * c, zero_point=(zp,) * c, granularity="channel", axis=1)
    return Coded(codes, spec)


@pytest.mark.parametrize("layout", ["nchw", "nhwc_view", "mixed", "channel"])
def test_coded_errors_equal_errors_of_the_reals(layout):
    """Metrics read from codes equal errors() of the real values made from them (same rules,
    sums equal up to summation order), whatever the memory layouts; the reals equal from_codes."""
    from hwsim.sim.metrics import coded_errors, errors
    from hwsim.sim.qspec import from_codes

    rng = np.random.default_rng(5)
    codes = rng.integers(0, 256, (2, 3, 4, 5)).astype(np.uint8)
    ref = rng.standard_normal((2, 3, 4, 5)) * 0.5
    if layout in ("nhwc_view", "mixed"):  # channels-last memory seen as (N, C, H, W)
        codes = np.ascontiguousarray(codes.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    if layout == "nhwc_view":
        ref = np.ascontiguousarray(ref.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    coded = _coded(codes, 7, 0.03125, "channel" if layout == "channel" else "tensor")
    real = from_codes(codes, coded.spec)
    np.testing.assert_array_equal(coded.real(), real)
    got, want = coded_errors(ref, coded), errors(ref, real)
    np.testing.assert_allclose(got, want, rtol=1e-12)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_coded_errors_non_finite_reference_as_errors(bad):
    from hwsim.sim.metrics import coded_errors, errors

    codes = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    ref = np.linspace(-1, 1, 24).reshape(2, 3, 4)
    ref[1, 2, 3] = bad
    coded = _coded(codes, 3, 0.5)
    np.testing.assert_array_equal(coded_errors(ref, coded), errors(ref, coded.real()))


def _qdq_graph_and_inputs():
    """A quantized graph whose activation scales are all given (a run computes its reference beside)."""
    g, x = _graph_and_inputs()
    return run(g, x).graph, x


def test_reference_beside_the_quantized_run_equals_it_first(monkeypatch):
    """run() computes the float reference on a thread of its own while the quantized ops run
    (runner._ReferenceBeside) when nothing is calibrated on it: outputs, per-layer metrics,
    reference values and notes equal those of the reference computed first."""
    from hwsim.sim import runner

    g, x = _qdq_graph_and_inputs()
    made = []
    beside_cls = runner._ReferenceBeside
    monkeypatch.setattr(runner, "_ReferenceBeside", lambda *a: made.append(1) or beside_cls(*a))
    monkeypatch.setattr(runner.refblas, "cpu_count", lambda: 2)
    beside = run(g, x)
    assert made
    monkeypatch.setattr(runner.refblas, "cpu_count", lambda: 1)
    first = run(g, x)
    assert len(made) == 1
    for n in first.outputs:
        np.testing.assert_array_equal(beside.outputs[n], first.outputs[n])
        np.testing.assert_array_equal(beside.reference_outputs[n], first.reference_outputs[n])
    assert [(e.name, e.sqnr_db, e.mse) for e in beside.layers] == [(e.name, e.sqnr_db, e.mse) for e in first.layers]
    assert beside.notes == first.notes and set(beside.reference.values) == set(first.reference.values)


@pytest.mark.parametrize("fails", ["reference", "quantized", "both"])
def test_reference_beside_raises_as_the_reference_first_would(monkeypatch, fails):
    """An error of either run reaches the caller; when both fail, the reference's (as when it runs
    first)."""
    from hwsim.sim import registry, runner

    g, x = _qdq_graph_and_inputs()
    monkeypatch.setattr(runner.refblas, "cpu_count", lambda: 2)
    conv = registry.EXECUTORS["conv2d"]

    def failing(ctx, op, xs):
        if fails == "both" or (fails == "reference") == ctx.reference:
            raise RuntimeError("reference" if ctx.reference else "quantized")
        return conv(ctx, op, xs)

    monkeypatch.setitem(registry.EXECUTORS, "conv2d", failing)
    with pytest.raises(RuntimeError, match="quantized" if fails == "quantized" else "reference"):
        run(g, x)


def test_coded_errors_of_codes_cut_from_a_padded_gemm_output(monkeypatch):
    """A 24-channel 8-bit GEMM output is padded to 32 columns and cut (MobileNetV2's project convs):
    its codes and the channels-last reference share no flat memory order, yet they are summed in one
    pass, row by row (no float64 reals made), equal to errors() of the reals up to summation order."""
    from hwsim.graph.quant import QuantSpec
    from hwsim.sim import metrics
    from hwsim.sim.qspec import Coded
    from hwsim.sim.refvalues import Biased

    rng = np.random.default_rng(5)
    n, c, h, w = 2, 24, 5, 6
    codes = rng.integers(0, 256, (n * h * w, 32)).astype(np.uint8)[:, :c].reshape(n, h, w, c).transpose(0, 3, 1, 2)
    ref = Biased(rng.standard_normal((n, h, w, c)).astype(np.float32).transpose(0, 3, 1, 2), rng.standard_normal(c), 1)
    coded = Coded(codes, QuantSpec(format="uint8", scale=(0.02,), zero_point=(7,)))
    want = metrics.errors(ref.real(), coded.real())

    def no_reals(*args):
        raise AssertionError("took the float64 reals")

    monkeypatch.setattr(metrics, "errors", no_reals)
    np.testing.assert_allclose(metrics.coded_errors(ref, coded), want, rtol=1e-12)


def test_fused_conv_reads_channels_last_codes_of_a_1x1_conv_without_a_copy():
    """The patches of an unpadded, unstrided 1x1 conv are its input: channels-last 8-bit codes are
    handed to the fused GEMM as they are (a view), equal to im2col's copy; other layouts, strides
    or types are copied by im2col as before."""
    import types

    from hwsim.sim import compute

    rng = np.random.default_rng(6)
    nhwc = rng.integers(0, 256, (2, 5, 6, 7)).astype(np.uint8)
    op = types.SimpleNamespace(stride=(1, 1), padding=(0, 0, 0, 0), dilation=(1, 1), groups=1)
    x = nhwc.transpose(0, 3, 1, 2)  # NCHW view of channels-last codes
    want = compute.im2col(x, 1, 1, op, (0, 7), dtype=np.uint8, fill=0, channels_last=True)
    got = compute._fused_patches(x, 1, 1, op, (0, 7), np.uint8, 0)
    assert np.shares_memory(got, nhwc) and np.array_equal(got, want)
    for xx, o, dt in ((np.ascontiguousarray(x), op, np.uint8),  # NCHW memory: copied
                      (x, types.SimpleNamespace(stride=(2, 2), padding=(0, 0, 0, 0), dilation=(1, 1), groups=1), np.uint8),
                      (x, op, np.int8)):
        got = compute._fused_patches(xx, 1, 1, o, (0, 7), dt, 0)
        assert not np.shares_memory(got, nhwc)
        np.testing.assert_array_equal(got, compute.im2col(xx, 1, 1, o, (0, 7), dtype=dt, fill=0, channels_last=True))
