"""QDQ models made by onnxruntime's ``quantize_static`` against onnxruntime itself, bit for bit.

``requant="onnxruntime"`` is compared with onnxruntime at its default ORT_ENABLE_ALL (QDQ fused into
QLinearConv, QLinearAdd, NhwcMaxPool, QLinearGlobalAveragePool, QGemm), ``requant="exact"`` with
ORT_DISABLE_ALL (QDQ run literally as float32 DequantizeLinear -> op -> QuantizeLinear). What is
modelled and what is not: :mod:`hwsim.sim.ortfused`.

The CPU matters. On x86 without VNNI (AVX2), MLAS multiplies uint8 activations by int8 weights
with VPMADDUBSW, which saturates the sum of each pair of products to int16; VNNI (AVX-512 VNNI,
AVX-VNNI) and ARM sum exactly. The simulator models the first with ``pairwise_int16=True``
(``--pairwise-int16``); :func:`ort_u8s8_pairs_saturate` asks onnxruntime on this machine which
one it does, and the tests select the option from the answer, so they hold bit-exact on both.

s8 activations on such a CPU: onnxruntime's QDQ transformer rewrites an int8 Q -> DQ pair to uint8
(code + 128, zero point + 128) where the Q feeds one DQ, and fuses a Conv / Gemm only when its
input and output are then both uint8 (here the last two Convs and the Gemm; the first Conv's
output and the second's input feed two nodes, stay int8, and those Convs run in float32). The
fused ones multiply code + 128 by the int8 weights, so their pairs saturate too. The simulator
applies that rewrite to exactly those ops (:func:`hwsim.sim.ortfused.fused_as_u8`). Measured on
an AMD EPYC AVX2 host, 3 seeds x per tensor / per channel x 5 inputs (600 outputs): 0 mismatches
with ORT_ENABLE_ALL; without the rewrite 48 of 600 differ, by up to 4 output steps. The tests
assert bit-exactness on every CPU.

Other limits: a float32 Conv that onnxruntime does not fuse sums in float32 and quantizes the float
result, while ``requant="onnxruntime"`` applies MLAS's fused requantization to every integer conv;
near a rounding tie the two can pick neighbouring codes. A 64-channel, 32x32, batch-4 version of
the CNN below, 5 draws (200 outputs, max |y| 0.93), AVX-512: ``onnxruntime`` vs ORT_ENABLE_ALL 0
mismatches for u8 activations (per tensor and per channel), 3 of 200 for s8; ``exact`` vs
ORT_DISABLE_ALL 3-4 of 200; each one output step (max abs diff 0.0072). Such a run says so in a
note (:func:`hwsim.sim.ortfused.runs_in_float` names the convs onnxruntime leaves in float; the
test below checks them against onnxruntime's optimized graph). Unary ops (AveragePool,
GlobalAveragePool, Softmax) left in float the same way are modelled: onnxruntime's float32 ops.
"""

import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

from hwsim.cli import main
from tests.sim.ort_cpu import ort_u8s8_pairs_saturate
from hwsim.graph.onnx import load_onnx
from hwsim.sim import run

SHAPE = (2, 3, 12, 12)
C = 8


def _float_cnn(path, seed=0):
    """conv+relu, conv+relu, conv, residual add, relu, maxpool, conv+relu, GAP, flatten, gemm."""
    rng = np.random.default_rng(seed)

    def w(name, *shape, s=None):
        s = s or 1.0 / np.sqrt(np.prod(shape[1:]))
        return numpy_helper.from_array((rng.standard_normal(shape) * s).astype(np.float32), name)

    inits = [w("w1", C, 3, 3, 3), w("b1", C, s=.1), w("w2", C, C, 3, 3), w("b2", C, s=.1), w("w3", C, C, 3, 3),
             w("b3", C, s=.1), w("w4", 2 * C, C, 3, 3), w("b4", 2 * C, s=.1), w("wg", 10, 2 * C), w("bg", 10, s=.1)]
    n = helper.make_node
    nodes = [n("Conv", ["x", "w1", "b1"], ["c1"], pads=[1] * 4), n("Relu", ["c1"], ["r1"]),
             n("Conv", ["r1", "w2", "b2"], ["c2"], pads=[1] * 4), n("Relu", ["c2"], ["r2"]),
             n("Conv", ["r2", "w3", "b3"], ["c3"], pads=[1] * 4), n("Add", ["r1", "c3"], ["a1"]),
             n("Relu", ["a1"], ["ra"]), n("MaxPool", ["ra"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
             n("Conv", ["p1", "w4", "b4"], ["c4"], pads=[1] * 4), n("Relu", ["c4"], ["r4"]),
             n("GlobalAveragePool", ["r4"], ["g"]), n("Flatten", ["g"], ["f"]),
             n("Gemm", ["f", "wg", "bg"], ["y"], transB=1)]
    graph = helper.make_graph(nodes, "cnn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, SHAPE)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, (SHAPE[0], 10))], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    onnx.save(model, path)


class _Reader(CalibrationDataReader):
    def __init__(self):
        rng = np.random.default_rng(1)
        self.data = iter([{"x": rng.standard_normal(SHAPE).astype(np.float32)} for _ in range(4)])

    def get_next(self):
        return next(self.data, None)


CONFIGS = [(False, "u8"), (True, "u8"), (False, "s8"), (True, "s8")]


@pytest.fixture(scope="module")
def qdq_models(tmp_path_factory):
    d = tmp_path_factory.mktemp("qdq")
    _float_cnn(d / "f.onnx")
    paths = {}
    for per_channel, act in CONFIGS:
        qp = d / f"q_{int(per_channel)}_{act}.onnx"
        quantize_static(str(d / "f.onnx"), str(qp), _Reader(), quant_format=QuantFormat.QDQ, per_channel=per_channel,
                        activation_type=QuantType.QUInt8 if act == "u8" else QuantType.QInt8,
                        weight_type=QuantType.QInt8)
        paths[(per_channel, act)] = qp
    return paths


def _ort(path, x, level):
    so = ort.SessionOptions()
    so.graph_optimization_level = level
    so.log_severity_level = 3
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]


def _inputs(n=3):
    rng = np.random.default_rng(11)
    return [(rng.standard_normal(SHAPE) * 1.3).astype(np.float32) for _ in range(n)]


PAIRS = ort_u8s8_pairs_saturate()


@pytest.mark.parametrize("per_channel,act", CONFIGS)
def test_onnxruntime_mode_equals_ort_enable_all(qdq_models, per_channel, act):
    path = qdq_models[(per_channel, act)]
    g = load_onnx(str(path), {})
    for x in _inputs():
        want = _ort(path, x, ort.GraphOptimizationLevel.ORT_ENABLE_ALL)
        got = run(g, {"x": x}, requant="onnxruntime", pairwise_int16=PAIRS).outputs["y"]
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, want)  # s8: onnxruntime's s8 -> u8 rewrite modelled


@pytest.mark.parametrize("seed", [0, 2])
def test_s8_rewrite_is_what_makes_s8_models_exact_on_avx2(tmp_path, seed, monkeypatch):
    """Per-channel int8-activation CNNs whose saturating pairs show (seeds 0 and 2): exact with the
    s8 -> u8 rewrite on the fused ops; without it, on a CPU whose u8*s8 pairs saturate, not."""
    import hwsim.sim.ortfused as ortfused

    _float_cnn(tmp_path / "f.onnx", seed)
    quantize_static(str(tmp_path / "f.onnx"), str(tmp_path / "q.onnx"), _Reader(), quant_format=QuantFormat.QDQ,
                    per_channel=True, activation_type=QuantType.QInt8, weight_type=QuantType.QInt8)
    g, xs = load_onnx(str(tmp_path / "q.onnx"), {}), _inputs(5)
    want = [_ort(tmp_path / "q.onnx", x, ort.GraphOptimizationLevel.ORT_ENABLE_ALL) for x in xs]
    for x, w in zip(xs, want):
        np.testing.assert_array_equal(run(g, {"x": x}, requant="onnxruntime", pairwise_int16=PAIRS).outputs["y"], w)
    monkeypatch.setattr(ortfused, "fused_as_u8", lambda ctx, op: False)
    off = sum(int((run(g, {"x": x}, requant="onnxruntime", pairwise_int16=PAIRS).outputs["y"] != w).sum())
              for x, w in zip(xs, want))
    assert (off > 0) == PAIRS


def test_pairwise_option_is_what_makes_u8_models_exact_on_avx2(qdq_models):
    """On a CPU whose u8*s8 pairs saturate, the exact sums differ from onnxruntime (so the option is
    needed and not a no-op); elsewhere the option would be wrong, so the exact sums must match."""
    path = qdq_models[(True, "u8")]
    g = load_onnx(str(path), {})
    off = sum(int((run(g, {"x": x}, requant="onnxruntime").outputs["y"]
                   != _ort(path, x, ort.GraphOptimizationLevel.ORT_ENABLE_ALL)).sum()) for x in _inputs())
    assert (off > 0) == PAIRS


@pytest.mark.parametrize("per_channel,act", CONFIGS)
def test_gemm_epilogue_requantization_is_taken_and_changes_nothing(qdq_models, per_channel, act, monkeypatch):
    """Where the host has the AVX2 kernels, the integer convs requantize in the GEMM's epilogue
    (kernel_api.qgemm_codes), and the outputs equal onnxruntime's and the unfused path's
    (the onnxruntime mode with ``in_gemm_epilogue`` off) bit for bit."""
    import dataclasses

    from hwsim import kernel_api, requant
    from hwsim.kernels import simdgemm

    if not simdgemm.available():
        pytest.skip("needs an AVX2 host and numba JIT")
    path = qdq_models[(per_channel, act)]
    g = load_onnx(str(path), {})
    taken, fused = [], kernel_api.qgemm_codes
    monkeypatch.setattr(kernel_api, "qgemm_codes", lambda *a, **k: taken.append(fused(*a, **k)) or taken[-1])
    mode = requant.get("onnxruntime")
    for x in _inputs(2):
        got = run(g, {"x": x}, requant="onnxruntime", pairwise_int16=PAIRS).outputs["y"]
        np.testing.assert_array_equal(got, _ort(path, x, ort.GraphOptimizationLevel.ORT_ENABLE_ALL))
        with monkeypatch.context() as m:
            m.setitem(requant._MODES, "onnxruntime", dataclasses.replace(mode, in_gemm_epilogue=False))
            n = len(taken)
            np.testing.assert_array_equal(got, run(g, {"x": x}, requant="onnxruntime", pairwise_int16=PAIRS).outputs["y"])
            assert len(taken) == n  # the unfused run did not fuse
    assert PAIRS is False or sum(q is not None for q in taken) >= 4  # the four convs of each run


@pytest.mark.parametrize("per_channel", [False, True])
def test_depthwise_requantization_in_its_pass_is_taken_and_changes_nothing(tmp_path, per_channel, monkeypatch):
    """A stem conv, a biased depthwise conv and a 1x1 conv (u8 activations, s8 weights): the
    depthwise conv requantizes in its own pass (kernel_api.qdepthwise_codes), and the outputs
    equal onnxruntime's and the unfused path's bit for bit."""
    import dataclasses

    from hwsim import kernel_api, requant

    rng = np.random.default_rng(4)
    w = lambda name, *shape: numpy_helper.from_array((rng.standard_normal(shape) * 0.4).astype(np.float32), name)  # noqa: E731
    n = helper.make_node
    nodes = [n("Conv", ["x", "w1", "b1"], ["c1"], pads=[1] * 4), n("Relu", ["c1"], ["r1"]),
             n("Conv", ["r1", "wd", "bd"], ["c2"], pads=[1] * 4, group=C, strides=[2, 2]), n("Relu", ["c2"], ["r2"]),
             n("Conv", ["r2", "w3", "b3"], ["y"])]
    graph = helper.make_graph(nodes, "dw", [helper.make_tensor_value_info("x", TensorProto.FLOAT, SHAPE)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              [w("w1", C, 3, 3, 3), w("b1", C), w("wd", C, 1, 3, 3), w("bd", C), w("w3", 4, C, 1, 1), w("b3", 4)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    onnx.save(model, tmp_path / "f.onnx")
    quantize_static(str(tmp_path / "f.onnx"), str(tmp_path / "q.onnx"), _Reader(), quant_format=QuantFormat.QDQ,
                    per_channel=per_channel, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    g = load_onnx(str(tmp_path / "q.onnx"), {})
    taken, fused = [], kernel_api.qdepthwise_codes
    monkeypatch.setattr(kernel_api, "qdepthwise_codes", lambda *a, **k: taken.append(fused(*a, **k)) or taken[-1])
    mode = requant.get("onnxruntime")
    for x in _inputs(2):
        got = run(g, {"x": x}, requant="onnxruntime", pairwise_int16=PAIRS).outputs["y"]
        np.testing.assert_array_equal(got, _ort(tmp_path / "q.onnx", x, ort.GraphOptimizationLevel.ORT_ENABLE_ALL))
        with monkeypatch.context() as m:
            m.setitem(requant._MODES, "onnxruntime", dataclasses.replace(mode, in_gemm_epilogue=False))
            np.testing.assert_array_equal(got, run(g, {"x": x}, requant="onnxruntime", pairwise_int16=PAIRS).outputs["y"])
    assert sum(q is not None for q in taken) == 2  # the depthwise conv of each fused run


@pytest.mark.parametrize("per_channel,act", CONFIGS)
def test_exact_mode_equals_ort_disable_all(qdq_models, per_channel, act):
    path = qdq_models[(per_channel, act)]
    g = load_onnx(str(path), {})
    for x in _inputs():
        want = _ort(path, x, ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
        np.testing.assert_array_equal(run(g, {"x": x}, requant="exact").outputs["y"], want)


def test_cli_simulate_requant_onnxruntime(qdq_models, tmp_path):
    path = qdq_models[(True, "u8")]
    x = _inputs(1)[0]
    np.savez(tmp_path / "in.npz", x=x)
    want = _ort(path, x, ort.GraphOptimizationLevel.ORT_ENABLE_ALL)
    args = ["simulate", str(path), "--inputs", str(tmp_path / "in.npz"), "--out", str(tmp_path / "a.npz"),
            "--requant", "onnxruntime"] + (["--pairwise-int16"] if PAIRS else [])
    assert main(args) == 0
    np.testing.assert_array_equal(np.load(tmp_path / "a.npz")["y"], want)
    args[args.index("--out") + 1] = str(tmp_path / "b.npz")
    proc = subprocess.run([sys.executable, "-m", "hwsim", *args], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "b.npz")["y"], want)


# ------------------------------------------------------------------ single fused ops
def _qdq(name, src, scale, zp, dt, nodes, inits):
    inits += [numpy_helper.from_array(np.array(scale, np.float32), name + "_s"),
              numpy_helper.from_array(np.array(zp, dt), name + "_z")]
    nodes += [helper.make_node("QuantizeLinear", [src, name + "_s", name + "_z"], [name + "_q"]),
              helper.make_node("DequantizeLinear", [name + "_q", name + "_s", name + "_z"], [name + "_d"])]
    return name + "_d"


def _single(tmp_path, op, in_shapes, out_shape, params, dt, **attrs):
    """Float QDQ model ``op(DQ(Q(x_i)))`` -> Q -> DQ with the given (scale, zero point) per tensor."""
    nodes, inits = [], []
    names = [_qdq(f"i{i}", f"x{i}", s, z, dt, nodes, inits) for i, (s, z) in enumerate(params[:-1])]
    nodes.append(helper.make_node(op, names, ["o"], **attrs))
    _qdq("y", "o", *params[-1], dt, nodes, inits)
    nodes.append(helper.make_node("Identity", ["y_d"], ["y"]))
    ins = [helper.make_tensor_value_info(f"x{i}", TensorProto.FLOAT, s) for i, s in enumerate(in_shapes)]
    graph = helper.make_graph(nodes, op, ins, [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)],
                              inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])
    model.ir_version = 9
    onnx.save(model, tmp_path / "m.onnx")
    return tmp_path / "m.onnx"


def _ort_feeds(path, feeds, level):
    so = ort.SessionOptions()
    so.graph_optimization_level = level
    so.log_severity_level = 3
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"]).run(None, feeds)[0]


@pytest.mark.parametrize("dt", [np.uint8, np.int8])
def test_qlinear_global_avgpool_matches_onnxruntime(tmp_path, dt):
    rng = np.random.default_rng(3)
    shape = (4, 256, 7, 7)
    info = np.iinfo(dt)
    zx, zy = int(rng.integers(info.min // 4, info.max // 4)), int(rng.integers(info.min // 4, info.max // 4))
    sx = float(np.float32(0.03))
    path = _single(tmp_path, "GlobalAveragePool", [shape], shape[:2] + (1, 1), [(sx, zx), (0.004, zy)], dt)
    codes = rng.integers(info.min, info.max + 1, shape)
    x = ((codes - zx) * np.float32(sx)).astype(np.float32)  # quantizes back to ``codes`` exactly
    g = load_onnx(str(path), {})
    want = _ort_feeds(path, {"x0": x}, ort.GraphOptimizationLevel.ORT_ENABLE_ALL)
    np.testing.assert_array_equal(run(g, {"x0": x}, requant="onnxruntime").outputs["y"], want)
    want = _ort_feeds(path, {"x0": x}, ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
    np.testing.assert_array_equal(run(g, {"x0": x}, requant="exact").outputs["y"], want)


_AVGPOOL_CASES = [  # kernel, strides, pads, count_include_pad, ceil_mode
    ((3, 2), (3, 2), (0, 0, 0, 0), 0, 0),  # PP-OCRv4 rec's pool (rapidocr-onnxruntime)
    ((3, 3), (1, 1), (1, 1, 1, 1), 0, 0),
    ((3, 3), (2, 2), (1, 1, 1, 1), 1, 0),
    ((2, 2), (2, 2), (0, 0, 0, 0), 0, 1),
    ((5, 5), (2, 2), (2, 1, 2, 1), 0, 1),
    ((7, 7), (1, 1), (0, 0, 0, 0), 0, 0),  # the whole image: onnxruntime's QLinearGlobalAveragePool
]


@pytest.mark.parametrize("dt", [np.uint8, np.int8])
@pytest.mark.parametrize("case", _AVGPOOL_CASES)
@pytest.mark.parametrize("seed", [0, 1])
def test_qdq_avgpool_matches_onnxruntime_fused_and_unfused(tmp_path, dt, case, seed):
    """QDQ AveragePool: ``requant="onnxruntime"`` against QLinearAveragePool (ORT_ENABLE_ALL), and
    ``exact`` against the float32 AveragePool between DQ and Q (ORT_DISABLE_ALL), code for code.
    Windows average k / 6, k / 9, ...: a sixth of the means are exact ties, so the float32 order
    of the sums, the division and (int8) the x86 uint8 rewrite each decide codes; before they were
    modelled 1.8% of a PP-OCRv4 recogniser's pool outputs differed from onnxruntime by one step."""
    k, s, p, cip, ceil = case
    rng = np.random.default_rng(seed)
    shape = (2, 16, 7, 7) if k == (7, 7) else (2, 16, 13, 11)
    info = np.iinfo(dt)
    zx, zy = (int(z) for z in rng.integers(info.min // 4, info.max // 4, 2))
    sx = float(np.float32(rng.uniform(0.01, 0.05)))
    sy = sx if seed == 0 else float(np.float32(sx * rng.uniform(0.3, 2)))  # equal scales: ties are exact
    path = _single(tmp_path, "AveragePool", [shape], None, [(sx, zx), (sy, zy)], dt, kernel_shape=list(k),
                   strides=list(s), pads=list(p), count_include_pad=cip, ceil_mode=ceil)
    codes = rng.integers(info.min, info.max + 1, shape)
    x = ((codes - zx) * np.float32(sx)).astype(np.float32)
    g = load_onnx(str(path), {})
    for level, requant in [(ort.GraphOptimizationLevel.ORT_ENABLE_ALL, "onnxruntime"),
                           (ort.GraphOptimizationLevel.ORT_DISABLE_ALL, "exact")]:
        want = _ort_feeds(path, {"x0": x}, level)
        np.testing.assert_array_equal(run(g, {"x0": x}, requant=requant, float_reference=False).outputs["y"], want,
                                      err_msg=requant)


def _add_grid(tmp_path, dt, seed):
    """QDQ Add over every pair of input codes (65,536 elements), scales drawn from ``seed``."""
    rng = np.random.default_rng(seed)
    info = np.iinfo(dt)
    sa, sb, sc = rng.uniform(0.005, 0.05, 3)
    za, zb, zc = (int(z) for z in rng.integers(info.min // 2 + info.max // 4, info.max // 2, 3))
    sa, sb = float(np.float32(sa)), float(np.float32(sb))
    path = _single(tmp_path, "Add", [(256, 256)] * 2, (256, 256), [(sa, za), (sb, zb), (2 * sc, zc)], dt)
    a, b = np.meshgrid(np.arange(info.min, info.max + 1), np.arange(info.min, info.max + 1))
    return path, {"x0": ((a - za) * np.float32(sa)).astype(np.float32),
                  "x1": ((b - zb) * np.float32(sb)).astype(np.float32)}


@pytest.mark.parametrize("dt", [np.uint8, np.int8])
def test_qdq_add_exact_mode_equals_ort_disable_all_on_every_code_pair(tmp_path, dt):
    path, feeds = _add_grid(tmp_path, dt, seed=1)
    want = _ort_feeds(path, feeds, ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
    np.testing.assert_array_equal(run(load_onnx(str(path), {}), feeds, requant="exact").outputs["y"], want)


@pytest.mark.parametrize("dt,seed", [(np.uint8, 1), (np.uint8, 11), (np.int8, 8)])
def test_qlinear_add_matches_onnxruntime_on_every_code_pair(tmp_path, dt, seed):
    """onnxruntime's fused QLinearAdd (ORT_ENABLE_ALL) computes MLAS's AVX2 ratio form with FMAs,
    not the literal float32 formula (:func:`hwsim.sim.ortfused.qlinear_add`); int8 is read as
    uint8 after onnxruntime's x86 s8 -> u8 rewrite. Over 20 scale draws x 65,536 code pairs the
    literal formula differed from onnxruntime in 7 (u8) and 4 (s8) pairs, the ratio form in none;
    these seeds hold such pairs (the literal formula fails here, one output step off)."""
    path, feeds = _add_grid(tmp_path, dt, seed)
    want = _ort_feeds(path, feeds, ort.GraphOptimizationLevel.ORT_ENABLE_ALL)
    g = load_onnx(str(path), {})
    np.testing.assert_array_equal(run(g, feeds, requant="onnxruntime").outputs["y"], want)


@pytest.mark.parametrize("dt,seed", [(np.uint8, 11), (np.int8, 8)])
@pytest.mark.parametrize("b_shape", [(256, 1), (1, 256)])
def test_qlinear_add_broadcast_matches_onnxruntime_on_every_code_pair(tmp_path, dt, seed, b_shape):
    """A QDQ Add of (256, 256) codes and a broadcast (256, 1) column or (1, 256) row (a per-channel
    bias's form) is fused into QLinearAdd as well, and takes its two-FMA form element by element:
    every code pair against onnxruntime. The literal formula differs here (one step, 1-2 pairs),
    and so does folding a per-row constant into the fixed part (the single-element form) in
    other draws (PP-OCRv5's recogniser: a depthwise conv plus its per-channel bias)."""
    rng = np.random.default_rng(seed)
    info = np.iinfo(dt)
    sa, sb, sc = rng.uniform(0.005, 0.05, 3)
    za, zb, zc = (int(z) for z in rng.integers(info.min // 2 + info.max // 4, info.max // 2, 3))
    sa, sb = float(np.float32(sa)), float(np.float32(sb))
    path = _single(tmp_path, "Add", [(256, 256), b_shape], (256, 256), [(sa, za), (sb, zb), (2 * sc, zc)], dt)
    codes = np.arange(info.min, info.max + 1)
    a, b = (np.broadcast_to(codes, (256, 256)), codes[:, None]) if b_shape == (256, 1) else \
        (np.broadcast_to(codes[:, None], (256, 256)), codes[None, :])
    feeds = {"x0": ((a - za) * np.float32(sa)).astype(np.float32), "x1": ((b - zb) * np.float32(sb)).astype(np.float32)}
    want = _ort_feeds(path, feeds, ort.GraphOptimizationLevel.ORT_ENABLE_ALL)
    g = load_onnx(str(path), {})
    np.testing.assert_array_equal(run(g, feeds, requant="onnxruntime").outputs["y"], want)


def _mul_grid(tmp_path, dt, seed, b_shape=(256, 256)):
    """QDQ Mul over every pair of input codes (b a single element or a row: every code of a),
    scales drawn from ``seed``; the output scale fits the products' range."""
    rng = np.random.default_rng(seed)
    info = np.iinfo(dt)
    sa, sb = (float(np.float32(v)) for v in rng.uniform(0.005, 0.05, 2))
    za, zb, zc = (int(z) for z in rng.integers(info.min // 2 + info.max // 4, info.max // 2, 3))
    sc = float(np.float32(sa * sb * 255 * 255 / 255 / rng.uniform(1.5, 4)))
    path = _single(tmp_path, "Mul", [(256, 256), b_shape], (256, 256), [(sa, za), (sb, zb), (sc, zc)], dt)
    a, b = np.meshgrid(np.arange(info.min, info.max + 1), np.arange(info.min, info.max + 1))
    b = b[:b_shape[0], :b_shape[1]]
    return path, {"x0": ((a - za) * np.float32(sa)).astype(np.float32),
                  "x1": ((b - zb) * np.float32(sb)).astype(np.float32)}


@pytest.mark.parametrize("dt", [np.uint8, np.int8])
@pytest.mark.parametrize("b_shape,seed", [((256, 256), 23), ((256, 256), 35), ((1, 1), 0), ((1, 256), 1)])
def test_qlinear_mul_matches_onnxruntime_on_every_code_pair(tmp_path, dt, seed, b_shape):
    """onnxruntime's fused QLinearMul (ORT_ENABLE_ALL) multiplies the zero-point-free codes
    exactly and scales the float32 product by ``s_a * s_b / s_c`` before adding ``zp_c``
    (:func:`hwsim.sim.ortfused.qlinear_mul`), not the literal float32 formula; int8 read as
    uint8 after the x86 s8 -> u8 rewrite. Over 40 scale draws x 65,536 code pairs the literal
    formula differed from onnxruntime in 2 draws (u8) and 3 (s8), by one step at ties (seeds 23
    and 35 here), the kernel's form in none, also against one element or a row (broadcast)."""
    path, feeds = _mul_grid(tmp_path, dt, seed, b_shape)
    want = _ort_feeds(path, feeds, ort.GraphOptimizationLevel.ORT_ENABLE_ALL)
    g = load_onnx(str(path), {})
    np.testing.assert_array_equal(run(g, feeds, requant="onnxruntime").outputs["y"], want)


# ------------------------------------------------------------------ QLinearConv u8 x s8 kernels
def _qlinear_conv_model(rng, c, o, k, groups, stride, pad, xzp, wdt=np.int8):
    info = np.iinfo(wdt)
    w = rng.integers(info.min, info.max + 1, (o, c // groups, k, k)).astype(wdt)
    f = numpy_helper.from_array
    inits = [f(np.array(0.02, np.float32), "xs"), f(np.array(xzp, np.uint8), "xz"), f(w, "w"),
             f(rng.uniform(0.01, 0.03, o).astype(np.float32), "ws"), f(np.zeros(o, wdt), "wz"),
             f(np.array(0.9, np.float32), "ys"), f(np.array(128, np.uint8), "yz")]
    node = helper.make_node("QLinearConv", ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz"], ["y"],
                            pads=[pad] * 4, group=groups, strides=[stride] * 2)
    graph = helper.make_graph([node], "qconv", [helper.make_tensor_value_info("x", TensorProto.UINT8, (1, c, 9, 9))],
                              [helper.make_tensor_value_info("y", TensorProto.UINT8, None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])
    model.ir_version = 9
    return model


@pytest.mark.parametrize("c,o,k,groups,stride,pad,xzp", [
    (8, 8, 3, 1, 1, 1, 0), (8, 16, 3, 4, 1, 1, 7), (8, 16, 3, 8, 2, 1, 5), (16, 16, 3, 16, 1, 1, 3),
    (5, 4, 3, 1, 2, 0, 100), (16, 4, 1, 1, 1, 0, 128)])
def test_qlinear_conv_u8s8_matches_onnxruntime_on_this_cpu(tmp_path, c, o, k, groups, stride, pad, xzp):
    """Random codes over the whole u8 / s8 range: on AVX2 pairs saturate (k ordered (kh, kw, c) per
    group, padding holding the zero point), depthwise (16 groups of one channel) sums exactly."""
    rng = np.random.default_rng(c * 100 + o + groups)
    model = _qlinear_conv_model(rng, c, o, k, groups, stride, pad, xzp)
    onnx.save(model, tmp_path / "c.onnx")
    x = rng.integers(0, 256, (1, c, 9, 9)).astype(np.uint8)
    want = _ort_feeds(tmp_path / "c.onnx", {"x": x}, ort.GraphOptimizationLevel.ORT_ENABLE_ALL)
    g = load_onnx(str(tmp_path / "c.onnx"), {})
    np.testing.assert_array_equal(run(g, {"x": x}, requant="onnxruntime", pairwise_int16=PAIRS).outputs["y"], want)


_CONV_CASES = [(8, 8, 3, 1, 1, 1, 0), (8, 16, 3, 4, 1, 1, 7), (8, 16, 3, 8, 2, 1, 5), (5, 4, 3, 1, 2, 0, 100),
               (16, 4, 1, 1, 1, 0, 128)]


def _spy_fused(monkeypatch):
    """The results of every kernel_api.qgemm_codes call (None where it declined)."""
    from hwsim import kernel_api

    taken, fused = [], kernel_api.qgemm_codes
    monkeypatch.setattr(kernel_api, "qgemm_codes", lambda *a, **k: taken.append(fused(*a, **k)) or taken[-1])
    return taken


@pytest.mark.parametrize("c,o,k,groups,stride,pad,xzp", _CONV_CASES)
def test_qlinear_conv_u8u8_exact_sums_fused_match_onnxruntime(tmp_path, monkeypatch, c, o, k, groups, stride, pad, xzp):
    """u8 x u8 QLinearConv (MLAS sums these exactly on every CPU): random codes over the whole range,
    grouped, strided and padded; the exact-sum conv requantized in the GEMM's epilogue is taken
    (where the host has the AVX2 kernels) and equals onnxruntime bit for bit."""
    from hwsim.kernels import simdgemm

    rng = np.random.default_rng(c * 100 + o + groups + 1)
    onnx.save(_qlinear_conv_model(rng, c, o, k, groups, stride, pad, xzp, np.uint8), tmp_path / "c.onnx")
    x = rng.integers(0, 256, (1, c, 9, 9)).astype(np.uint8)
    want = _ort_feeds(tmp_path / "c.onnx", {"x": x}, ort.GraphOptimizationLevel.ORT_ENABLE_ALL)
    g = load_onnx(str(tmp_path / "c.onnx"), {})
    taken = _spy_fused(monkeypatch)
    np.testing.assert_array_equal(run(g, {"x": x}, requant="onnxruntime", pairwise_int16=PAIRS).outputs["y"], want)
    assert not simdgemm.available() or sum(q is not None for q in taken) == groups


@pytest.mark.parametrize("c,o,k,groups,stride,pad,xzp", _CONV_CASES)
def test_u8s8_conv_with_exact_sums_fused_equals_unfused(tmp_path, monkeypatch, c, o, k, groups, stride, pad, xzp):
    """u8 x s8 with exact sums (``pairwise_int16=False``: onnxruntime on VNNI and ARM hosts): the conv
    requantized in the GEMM's epilogue is taken and gives the codes of the unfused path (exact
    int64 convolution, then onnxruntime's requantization), on random codes over the whole range."""
    import dataclasses

    from hwsim import requant
    from hwsim.kernels import simdgemm

    rng = np.random.default_rng(c * 100 + o + groups + 2)
    onnx.save(_qlinear_conv_model(rng, c, o, k, groups, stride, pad, xzp), tmp_path / "c.onnx")
    x = {"x": rng.integers(0, 256, (1, c, 9, 9)).astype(np.uint8)}
    g = load_onnx(str(tmp_path / "c.onnx"), {})
    taken = _spy_fused(monkeypatch)
    got = run(g, x, requant="onnxruntime", pairwise_int16=False).outputs["y"]
    assert not simdgemm.available() or sum(q is not None for q in taken) == groups
    with monkeypatch.context() as m:
        m.setitem(requant._MODES, "onnxruntime", dataclasses.replace(requant.get("onnxruntime"), in_gemm_epilogue=False))
        n = len(taken)
        np.testing.assert_array_equal(got, run(g, x, requant="onnxruntime", pairwise_int16=False).outputs["y"])
        assert len(taken) == n
    if not PAIRS:  # this host's onnxruntime sums u8 x s8 exactly: it is the oracle too
        np.testing.assert_array_equal(got, _ort_feeds(tmp_path / "c.onnx", x, ort.GraphOptimizationLevel.ORT_ENABLE_ALL))


@pytest.mark.parametrize("dt,ys", [(np.uint8, 1 / 255), (np.uint8, 1 / 256), (np.int8, 1 / 256), (np.uint8, 0.0051),
                                   (np.uint8, 1e-4), (np.int8, 1e-4)])
def test_qlinear_softmax_matches_onnxruntime(tmp_path, dt, ys):
    """QDQ Softmax fused into com.microsoft QLinearSoftmax (table of exp, floor(1 / y_scale)); with
    y_scale 1e-4 the float32 product table * 10000 overflows and the code saturates."""
    rng = np.random.default_rng(int(ys * 1e4))
    info = np.iinfo(dt)
    zy = 0 if dt == np.uint8 else -128
    path = _single(tmp_path, "Softmax", [(6, 4, 37)], (6, 4, 37), [(0.07, int(info.min // 2 + info.max // 2)),
                                                                   (float(np.float32(ys)), zy)], dt, axis=-1)
    x = (rng.standard_normal((6, 4, 37)) * 3).astype(np.float32)
    g = load_onnx(str(path), {})
    want = _ort_feeds(path, {"x0": x}, ort.GraphOptimizationLevel.ORT_ENABLE_ALL)
    np.testing.assert_array_equal(run(g, {"x0": x}, requant="onnxruntime").outputs["y"], want)
    want = _ort_feeds(path, {"x0": x}, ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
    np.testing.assert_array_equal(run(g, {"x0": x}, requant="exact").outputs["y"], want)


def test_host_detection_agrees_with_onnxruntime_on_this_cpu():
    """The CPU-feature rule behind the host note against what onnxruntime itself does here."""
    from hwsim.sim.ortfused import host_saturates_pairs

    assert host_saturates_pairs() == PAIRS


@pytest.mark.parametrize("act", ["u8", "s8"])
def test_exact_sums_say_where_this_hosts_onnxruntime_differs(qdq_models, act, monkeypatch, capsys):
    """Without pairwise_int16 a run notes, once, that onnxruntime on this kind of CPU saturates u8 x s8
    pairs (s8 models: through its u8 rewrite); with it, or on a CPU that sums exactly, it does not."""
    import hwsim.sim.ortfused as ortfused

    path, x = qdq_models[(True, act)], _inputs(1)[0]
    g = load_onnx(str(path), {})
    for host in (True, False):
        monkeypatch.setattr(ortfused, "host_saturates_pairs", lambda: host)
        notes = run(g, {"x": x}, requant="onnxruntime").notes
        assert notes.count(ortfused.HOST_PAIRS_NOTE) == int(host)
        assert ortfused.HOST_PAIRS_NOTE not in run(g, {"x": x}, requant="onnxruntime", pairwise_int16=True).notes
    np.savez(path.parent / f"in_{act}.npz", x=x)
    monkeypatch.setattr(ortfused, "host_saturates_pairs", lambda: True)
    assert main(["simulate", str(path), "--inputs", str(path.parent / f"in_{act}.npz"), "--requant", "onnxruntime"]) == 0
    assert "saturates each pair of them to int16" in capsys.readouterr().out


@pytest.mark.parametrize("weights", ["int8", "int4"])
def test_requantizing_a_qdq_model_starts_from_the_real_weights_and_biases(qdq_models, weights):
    """--weights on a QDQ model: its int8 weight codes and int32 bias codes become the reals they
    stand for before the new format quantizes them (they were read as real values: 0 dB SQNR)."""
    from hwsim.graph.annotate import quantize_graph

    path = qdq_models[(True, "u8")]
    g = load_onnx(str(path), {})
    assert any(g.tensors[op.inputs[2]].dtype == "int32" for op in g.layers() if len(op.inputs) > 2)
    x = _inputs(1)[0]
    own = run(g, {"x": x}, requant="onnxruntime").outputs["y"]
    again = run(quantize_graph(g, weights, None), {"x": x}, requant="onnxruntime").outputs["y"]
    err = np.sqrt(np.mean((again - own) ** 2)) / np.sqrt(np.mean(own ** 2))
    assert err < (0.05 if weights == "int8" else 0.5)


@pytest.mark.parametrize("dt", [np.uint8, np.int8])
@pytest.mark.parametrize("vshape", [(24,), (1, 1, 24)])
def test_codes_plus_bias_vector_in_one_pass_is_taken_and_changes_nothing(tmp_path, dt, vshape, monkeypatch):
    """A MatMul's bias Add (QDQ codes plus a dequantized constant vector along the last axis, the
    BERT layers' form) runs as one pass from codes to codes (hwsim.sim.elementwise._coded_plus_vector):
    the outputs and per-layer metrics of the three-pass path, in both requant modes."""
    from hwsim.sim import elementwise

    rng = np.random.default_rng(5)
    info = np.iinfo(dt)
    mid = (int(info.min) + int(info.max) + 1) // 2
    nodes, inits = [], []
    xd = _qdq("x", "x0", float(np.float32(0.02)), mid + 3, dt, nodes, inits)
    inits += [numpy_helper.from_array(rng.integers(info.min, info.max + 1, vshape).astype(dt), "b_q"),
              numpy_helper.from_array(np.array(0.01, np.float32), "b_s"), numpy_helper.from_array(np.array(mid - 2, dt), "b_z")]
    nodes.append(helper.make_node("DequantizeLinear", ["b_q", "b_s", "b_z"], ["b_d"]))
    nodes.append(helper.make_node("Add", [xd, "b_d"], ["o"]))
    _qdq("y", "o", float(np.float32(0.03)), mid - 5, dt, nodes, inits)
    nodes.append(helper.make_node("Identity", ["y_d"], ["y"]))
    graph = helper.make_graph(nodes, "bias_add", [helper.make_tensor_value_info("x0", TensorProto.FLOAT, (2, 16, 24))],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, (2, 16, 24))], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])
    model.ir_version = 9
    onnx.save(model, tmp_path / "m.onnx")
    g = load_onnx(str(tmp_path / "m.onnx"), {})
    x = {"x0": (rng.standard_normal((2, 16, 24)) * 1.5).astype(np.float32)}
    taken = []
    fast = elementwise._coded_plus_vector
    for requant in ("exact",):  # requant="onnxruntime" fuses it into QLinearAdd (test_qlinear_add_broadcast...)
        monkeypatch.setattr(elementwise, "_coded_plus_vector", lambda *a: taken.append(fast(*a)) or taken[-1])
        got = run(g, x, requant=requant)
        assert taken and taken[-1] is not None
        monkeypatch.setattr(elementwise, "_coded_plus_vector", lambda *a: None)
        want = run(g, x, requant=requant)
        np.testing.assert_array_equal(got.outputs["y"], want.outputs["y"])
        assert [(e.sqnr_db, e.mse) for e in got.layers] == [(e.sqnr_db, e.mse) for e in want.layers]


def test_imported_weights_are_frozen_and_found_again_without_reading_them(qdq_models, monkeypatch):
    """The importer's constants are frozen (hwsim.kernels.packcache.frozen): a second run finds
    every packed weight by identity, none by fingerprint and byte comparison, with the same output."""
    from hwsim.kernels import packcache

    path = qdq_models[(True, "u8")]
    g = load_onnx(str(path), {})
    consts = [t for t in g.tensors.values() if t.data is not None]
    assert consts and all(packcache._frozen_root(t.data) is not None for t in consts)
    x = _inputs(1)[0]
    first = run(g, {"x": x}, requant="onnxruntime", pairwise_int16=PAIRS).outputs["y"]
    seen = {"frozen": 0, "content": 0}
    frozen_path, fingerprint = packcache._packed_frozen, packcache._fingerprint

    def by_identity(*a):
        seen["frozen"] += 1
        return frozen_path(*a)

    def by_content(*a):
        seen["content"] += 1
        return fingerprint(*a)

    monkeypatch.setattr(packcache, "_packed_frozen", by_identity)
    monkeypatch.setattr(packcache, "_fingerprint", by_content)
    again = run(g, {"x": x}, requant="onnxruntime", pairwise_int16=PAIRS).outputs["y"]
    np.testing.assert_array_equal(again, first)
    assert seen["frozen"] > 0 and seen["content"] == 0, seen


def _unary_readers(tmp_path, op, shape, sx, zx, sy, zy, in_readers, out_readers, **attrs):
    """int8 QDQ ``op`` between a Q -> DQ pair on its input and one on its output, each pair's
    DequantizeLinear read by ``in_readers`` / ``out_readers`` nodes (Identity / Relu / Sigmoid). A
    tensor read by one node is rewritten to uint8 on x86, one read by two keeps int8."""
    nodes, inits = [], []
    d_in = _qdq("i0", "x0", sx, zx, np.int8, nodes, inits)
    outs = []
    for i in range(1, in_readers):
        nodes.append(helper.make_node("Relu", [d_in], [f"side_in{i}"]))
        outs.append(f"side_in{i}")
    nodes.append(helper.make_node(op, [d_in], ["o"], **attrs))
    d_out = _qdq("y", "o", sy, zy, np.int8, nodes, inits)
    nodes.append(helper.make_node("Identity", [d_out], ["y"]))
    for i in range(1, out_readers):
        nodes.append(helper.make_node("Sigmoid", [d_out], [f"side_out{i}"]))
        outs.append(f"side_out{i}")
    graph = helper.make_graph(nodes, op, [helper.make_tensor_value_info("x0", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ["y", *outs]], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])
    model.ir_version = 9
    onnx.save(model, tmp_path / "m.onnx")
    return tmp_path / "m.onnx"


def _ort_y(path, feeds):
    so = ort.SessionOptions()
    so.log_severity_level = 3
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"]).run(["y"], feeds)[0]


@pytest.mark.parametrize("readers", [(2, 1), (1, 2)])
@pytest.mark.parametrize("case", _AVGPOOL_CASES[:3])
@pytest.mark.parametrize("seed", [0, 1])
def test_int8_avgpool_rewritten_on_one_side_only_runs_in_float_as_onnxruntime_does(tmp_path, readers, case, seed):
    """An int8 QDQ AveragePool whose input or output is read by two nodes: onnxruntime's x86
    rewrite makes one side uint8, its selector then does not fuse it, and the pool runs in float32
    between DequantizeLinear and QuantizeLinear. PP-OCRv4's recogniser quantized with
    quantize_static's defaults (int8 activations) has one; modelled as QLinearAveragePool, 127 of
    its 265,000 outputs differed from onnxruntime."""
    k, s, p, cip, ceil = case
    rng = np.random.default_rng(seed)
    shape = (2, 16, 13, 11)
    zx = int(rng.integers(-32, 32))
    sx = float(np.float32(rng.uniform(0.01, 0.05)))
    sy = sx if seed == 0 else float(np.float32(sx * rng.uniform(0.3, 2)))
    path = _unary_readers(tmp_path, "AveragePool", shape, sx, zx, sy, zx, *readers, kernel_shape=list(k),
                          strides=list(s), pads=list(p), count_include_pad=cip, ceil_mode=ceil)
    x = ((rng.integers(-128, 128, shape) - zx) * np.float32(sx)).astype(np.float32)
    got = run(load_onnx(str(path), {}), {"x0": x}, requant="onnxruntime", float_reference=False).outputs["y"]
    np.testing.assert_array_equal(got, _ort_y(path, {"x0": x}))


def _optimized_ops(path) -> dict[str, str]:
    """Output tensor -> op type of every node of onnxruntime's optimized graph (ORT_ENABLE_ALL)."""
    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.optimized_model_filepath = str(path) + ".opt.onnx"
    ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    return {o: n.op_type for n in onnx.load(str(path) + ".opt.onnx").graph.node for o in n.output}


@pytest.mark.parametrize("per_channel,act", CONFIGS)
def test_the_convs_onnxruntime_runs_in_float_are_the_ones_noted(qdq_models, per_channel, act):
    """Which convs / gemms onnxruntime leaves unfused (float Conv / Gemm nodes in its optimized graph):
    with int8 activations, those whose input and output its rewrite reaches on one side only
    (:func:`hwsim.sim.ortfused.runs_in_float`); with uint8 activations none. A run notes the first."""
    from hwsim.sim import ortfused
    from hwsim.sim.registry import ExecContext

    path = qdq_models[(per_channel, act)]
    g = load_onnx(str(path), {})
    ctx = ExecContext(graph=g, reference=False, requant="onnxruntime")
    predicted = {op.outputs[0] for op in g.ops() if op.op in ("conv2d", "linear") and ortfused.runs_in_float(ctx, op)}
    opt = _optimized_ops(path)
    in_float = {op.outputs[0] for op in g.ops() if op.op in ("conv2d", "linear") and opt.get(op.outputs[0]) in ("Conv", "Gemm")}
    assert predicted == in_float
    assert bool(in_float) == (act == "s8")  # the fixture's first Conv output feeds two nodes
    notes = [n for n in run(g, {"x": _inputs(1)[0]}, requant="onnxruntime", pairwise_int16=PAIRS).notes
             if n.startswith(ortfused.RUNS_IN_FLOAT_NOTE)]
    assert len(notes) == int(act == "s8")


@pytest.mark.parametrize("readers", [(2, 1), (1, 2)])
@pytest.mark.parametrize("op,shape,attrs", [("GlobalAveragePool", (4, 64, 7, 7), {}), ("Softmax", (6, 4, 37), {"axis": -1})])
@pytest.mark.parametrize("seed", [0, 1])
def test_int8_gap_and_softmax_rewritten_on_one_side_only_match_onnxruntime(tmp_path, readers, op, shape, attrs, seed):
    """The other unary QDQ ops hwsim fuses as onnxruntime does (QLinearGlobalAveragePool,
    QLinearSoftmax), with the rewrite reaching one side only: onnxruntime leaves them in float."""
    rng = np.random.default_rng(seed)
    zx, sx = int(rng.integers(-32, 32)), float(np.float32(rng.uniform(0.01, 0.05)))
    sy, zy = (float(np.float32(1 / 256)), -128) if op == "Softmax" else (sx, zx)
    path = _unary_readers(tmp_path, op, shape, sx, zx, sy, zy, *readers, **attrs)
    x = ((rng.integers(-128, 128, shape) - zx) * np.float32(sx)).astype(np.float32)
    got = run(load_onnx(str(path), {}), {"x0": x}, requant="onnxruntime", float_reference=False).outputs["y"]
    np.testing.assert_array_equal(got, _ort_y(path, {"x0": x}))
