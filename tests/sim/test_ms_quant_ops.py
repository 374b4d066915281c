"""com.microsoft ops that onnxruntime's quantizers and optimizer write, imported as the standard nodes
that define them, against onnxruntime.

- ``quantize_static(..., quant_format=QOperator)``: QLinearConv, com.microsoft QLinearAdd,
  QLinearGlobalAveragePool and QGemm; bit-exact at ORT_ENABLE_ALL and ORT_DISABLE_ALL.
- DynamicQuantizeMatMul (onnxruntime's fusion of DynamicQuantizeLinear + MatMulInteger + scale):
  bit-exact.
- MatMulNBits (``MatMulNBitsQuantizer``, committed models made by tests/data/make_ms_quant_models.py, and
  hand-packed 2/4/8-bit nodes, accuracy_level 0 and 4): within 3e-7 of the output range (float32 order).
- DynamicQuantizeLSTM: bit-exact. QAttention: within 1e-6 of the output range (mostly bit-exact); float
  com.microsoft Attention within 1e-5.
- Ops hwsim has no definition for (FusedMatMul...) are refused naming the node.
"""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

from hwsim.errors import UnsupportedOpError
from hwsim.graph.onnx import load_onnx
from hwsim.sim import run
from tests.sim import test_sim_qdq_ort as cnn
from tests.sim.ort_cpu import ort_u8s8_pairs_saturate
from tests.sim.test_corpus_models import DATA, _script

PAIRS = ort_u8s8_pairs_saturate()
LEVELS = (ort.GraphOptimizationLevel.ORT_ENABLE_ALL, ort.GraphOptimizationLevel.ORT_DISABLE_ALL)


@pytest.mark.parametrize("per_channel", [False, True])
def test_qoperator_cnn_bit_exact(tmp_path, per_channel):
    cnn._float_cnn(tmp_path / "f.onnx")
    quantize_static(str(tmp_path / "f.onnx"), str(tmp_path / "q.onnx"), cnn._Reader(), quant_format=QuantFormat.QOperator,
                    per_channel=per_channel, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    kinds = {(n.domain, n.op_type) for n in onnx.load(tmp_path / "q.onnx").graph.node}
    assert {("com.microsoft", "QGemm"), ("com.microsoft", "QLinearAdd"),
            ("com.microsoft", "QLinearGlobalAveragePool")} <= kinds
    g = load_onnx(tmp_path / "q.onnx", {})
    for x in cnn._inputs(2):
        got = run(g, {"x": x}, requant="onnxruntime", pairwise_int16=PAIRS).outputs["y"]
        for level in LEVELS:
            np.testing.assert_array_equal(got, cnn._ort(tmp_path / "q.onnx", x, level))


def _ms_model(path, node, inputs, inits, out_shape):
    graph = helper.make_graph([node], "ms", inputs, [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)],
                              inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)])
    model.ir_version = 9
    onnx.save(model, path)


@pytest.mark.parametrize("wdt,bias", [(np.int8, True), (np.uint8, False), (np.int8, False)])
def test_dynamic_quantize_matmul_bit_exact(tmp_path, wdt, bias):
    rng = np.random.default_rng(7)
    info = np.iinfo(wdt)
    b = rng.integers(info.min, info.max + 1, (48, 24)).astype(wdt)
    inits = [numpy_helper.from_array(b, "b"), numpy_helper.from_array(rng.uniform(0.001, 0.01, 24).astype(np.float32), "bs"),
             numpy_helper.from_array(rng.integers(info.min // 4 + info.max // 4, info.max // 2, 24).astype(wdt), "bz")]
    ins = ["x", "b", "bs", "bz"]
    if bias:
        inits.append(numpy_helper.from_array(rng.standard_normal(24).astype(np.float32), "bias"))
        ins.append("bias")
    node = helper.make_node("DynamicQuantizeMatMul", ins, ["y"], domain="com.microsoft")
    _ms_model(tmp_path / "m.onnx", node, [helper.make_tensor_value_info("x", TensorProto.FLOAT, (3, 5, 48))], inits,
              (3, 5, 24))
    g = load_onnx(tmp_path / "m.onnx", {})
    for seed in range(3):
        x = (np.random.default_rng(seed).standard_normal((3, 5, 48)) * 2 + 0.3).astype(np.float32)
        got = run(g, {"x": x}, requant="onnxruntime", pairwise_int16=PAIRS).outputs["y"]
        so = ort.SessionOptions()
        so.log_severity_level = 3
        want = ort.InferenceSession(str(tmp_path / "m.onnx"), so, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
        np.testing.assert_array_equal(got, want)


def test_ops_without_definition_are_refused_naming_the_node(tmp_path):
    node = helper.make_node("FusedMatMul", ["x", "b"], ["y"], domain="com.microsoft", name="fused", alpha=2.0)
    inits = [numpy_helper.from_array(np.ones((32, 8), np.float32), "b")]
    _ms_model(tmp_path / "m.onnx", node, [helper.make_tensor_value_info("x", TensorProto.FLOAT, (2, 32))], inits, (2, 8))
    with pytest.raises(UnsupportedOpError, match="com.microsoft.FusedMatMul \\(node 'fused'\\)"):
        load_onnx(tmp_path / "m.onnx", {})


# ------------------------------------------------------------------ MatMulNBits
@pytest.mark.parametrize("name", ["mlp_nbits4", "mlp_nbits4_sym", "lstm_qdynamic", "lstm_qdynamic_pc", "attention_qdynamic",
                                  "attention_causal_qdynamic"])
def test_committed_model_is_what_the_script_builds(name):
    assert (DATA / f"{name}.onnx").read_bytes() == _script("make_ms_quant_models").MODELS[name]().SerializeToString()


def _ort_run(path, feeds):
    so = ort.SessionOptions()
    so.log_severity_level = 3
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"]).run(None, feeds)


@pytest.mark.parametrize("name,shape", [("mlp_nbits4", (2, 5, 80)), ("mlp_nbits4_sym", (3, 80))])
def test_matmul_nbits_quantizer_models_match_onnxruntime(name, shape):
    """MatMulNBitsQuantizer output (asymmetric: packed zero points; symmetric: negative scales, no
    zero points) imports as linear layers with uint4 per-block weights; MACs = rows x K x N."""
    g = load_onnx(DATA / f"{name}.onnx", {"x": shape})
    ws = [t for t in g.tensors.values() if t.role == "weight"]
    assert [(t.quant.format, t.quant.granularity, t.quant.group_size, t.shape) for t in ws] == [
        ("uint4", "group", 32, (48, 80)), ("uint4", "group", 32, (24, 48))]
    assert g.total_macs == int(np.prod(shape[:-1])) * (80 * 48 + 48 * 24)
    for seed in range(3):
        x = np.random.default_rng(seed).standard_normal(shape).astype(np.float32) * (seed + 1)
        want = _ort_run(DATA / f"{name}.onnx", {"x": x})[0]
        got = run(g, {"x": x}).outputs["y"]
        assert np.max(np.abs(got - want)) <= 2e-6 * np.ptp(want)


def _pack(codes: np.ndarray, bits: int) -> np.ndarray:
    """Rows of codes packed lowest bits first (written out independently of hwsim's unpacker)."""
    per = 8 // bits
    rows, n = codes.shape
    padded = np.zeros((rows, -(-n // per) * per), np.int64)
    padded[:, :n] = codes
    out = np.zeros((rows, padded.shape[1] // per), np.int64)
    for j in range(per):
        out |= padded[:, j::per] << (j * bits)
    return out.astype(np.uint8)


@pytest.mark.parametrize("accuracy", [0, 4])
@pytest.mark.parametrize("bits,zp,bias,block", [(4, True, True, 16), (4, False, False, 32), (8, True, False, 16),
                                                (2, True, True, 16), (2, False, True, 32)])
def test_matmul_nbits_hand_packed_matches_onnxruntime(tmp_path, bits, zp, bias, block, accuracy):
    """accuracy_level 0: float32 activations; 4: int8 per block inside the op (linear_block_int8),
    except where onnxruntime has no int8 kernel (2-bit blocks of 16): within 3e-7 of the range."""
    rng = np.random.default_rng(bits)
    k, n = 72, 20
    blocks = -(-k // block)
    codes = rng.integers(0, 1 << bits, (n, blocks * block))
    b = _pack(codes, bits).reshape(n, blocks, -1)
    scales = (rng.uniform(0.01, 0.1, (n, blocks)) * rng.choice([-1, 1], (n, blocks))).astype(np.float32)
    inits = [numpy_helper.from_array(b, "b"), numpy_helper.from_array(scales.ravel(), "s")]
    ins = ["x", "b", "s"]
    if zp:
        inits.append(numpy_helper.from_array(_pack(rng.integers(0, 1 << bits, (n, blocks)), bits).ravel(), "z"))
        ins.append("z")
    if bias:
        inits.append(numpy_helper.from_array(rng.standard_normal(n).astype(np.float32), "bias"))
        ins += [""] * (5 - len(ins)) + ["bias"]
    node = helper.make_node("MatMulNBits", ins, ["y"], domain="com.microsoft", K=k, N=n, bits=bits, block_size=block,
                            accuracy_level=accuracy)
    _ms_model(tmp_path / "m.onnx", node, [helper.make_tensor_value_info("x", TensorProto.FLOAT, (4, k))], inits, (4, n))
    x = rng.standard_normal((4, k)).astype(np.float32)
    want = _ort_run(tmp_path / "m.onnx", {"x": x})[0]
    g = load_onnx(tmp_path / "m.onnx", {})
    assert g.ops()[0].op == ("linear_block_int8" if accuracy and (bits, block) != (2, 16) else "linear")
    res = run(g, {"x": x})
    assert np.max(np.abs(res.outputs["y"] - want)) <= 3e-7 * np.ptp(want)
    if g.ops()[0].op == "linear_block_int8":  # the int8 activations are what brings it there
        assert np.max(np.abs(res.reference_outputs["y"] - want)) > 1e-4 * np.ptp(want)


def test_matmul_nbits_act_order_is_refused(tmp_path):
    k, n = 32, 8
    inits = [numpy_helper.from_array(np.zeros((n, 2, 8), np.uint8), "b"), numpy_helper.from_array(np.ones(2 * n, np.float32), "s"),
             numpy_helper.from_array(np.arange(k, dtype=np.int32)[::-1] // 16, "g")]
    node = helper.make_node("MatMulNBits", ["x", "b", "s", "", "g"], ["y"], domain="com.microsoft", name="nb", K=k, N=n,
                            bits=4, block_size=16)
    _ms_model(tmp_path / "m.onnx", node, [helper.make_tensor_value_info("x", TensorProto.FLOAT, (2, k))], inits, (2, n))
    with pytest.raises(UnsupportedOpError, match="MatMulNBits \\(node 'nb'\\): g_idx"):
        load_onnx(tmp_path / "m.onnx", {})


# ------------------------------------------------------------------ DynamicQuantizeLSTM
THREADS = 2  # onnxruntime's result depends on its intra-op threads (batch split); both sides use 2


def _ort_threads(path, feeds, threads=THREADS):
    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"]).run(None, feeds)


@pytest.mark.parametrize("name", ["lstm_qdynamic", "lstm_qdynamic_pc"])
def test_quantize_dynamic_lstm_matches_onnxruntime(name):
    """quantize_dynamic's DynamicQuantizeLSTM (int8 weights, per tensor / per gate row) through an
    int8 embedding and a dynamically quantized head: bit-exact at batch 1..5."""
    path = DATA / f"{name}.onnx"
    for batch in (1, 2, 3, 5):
        ids = np.random.default_rng(batch).integers(0, 30, (batch, 9)).astype(np.int64)
        g = load_onnx(path, {"ids": ids.shape})
        assert g.total_macs == 9 * batch * (2 * 40 * (12 + 10) + 20 * 7)
        want = _ort_threads(path, {"ids": ids})[0]
        got = run(g, {"ids": ids}, requant="onnxruntime", pairwise_int16=PAIRS, ort_threads=THREADS).outputs["logits"]
        np.testing.assert_array_equal(got, want)


def _dq_lstm_node(tmp_path, rng, direction, wdt, extras: bool, hid=6, isz=5, seq=4, batch=2, per_row=False):
    dirs = 2 if direction == "bidirectional" else 1
    info = np.iinfo(wdt)
    shape = (dirs, 4 * hid) if per_row else (dirs,)
    zp = rng.integers(info.min // 8 + info.max // 8, info.max // 4, dirs).astype(wdt) if wdt == np.uint8 else np.zeros(dirs, wdt)
    zps = np.broadcast_to(zp[:1], shape).copy() if per_row else zp  # onnxruntime: per-row zero points all equal
    inits = {"W": rng.integers(info.min, info.max + 1, (dirs, isz, 4 * hid)).astype(wdt),
             "R": rng.integers(info.min, info.max + 1, (dirs, hid, 4 * hid)).astype(wdt),
             "B": (rng.standard_normal((dirs, 8 * hid)) * 0.3).astype(np.float32),
             "ws": rng.uniform(0.002, 0.01, shape).astype(np.float32), "wz": zps,
             "rs": rng.uniform(0.002, 0.01, shape).astype(np.float32), "rz": zps.copy()}
    ins = ["X", "W", "R", "B", "", "", "", "", "ws", "wz", "rs", "rz"]
    feeds = {"X": rng.standard_normal((seq, batch, isz)).astype(np.float32)}
    kw = {}
    if extras:
        feeds["h0"] = (rng.standard_normal((dirs, batch, hid)) * 0.5).astype(np.float32)
        feeds["c0"] = (rng.standard_normal((dirs, batch, hid)) * 0.5).astype(np.float32)
        inits["P"] = (rng.standard_normal((dirs, 3 * hid)) * 0.3).astype(np.float32)
        ins[5:8] = ["h0", "c0", "P"]
        kw = {"clip": 2.5}
    node = helper.make_node("DynamicQuantizeLSTM", ins, ["Y", "Y_h", "Y_c"], domain="com.microsoft", name="dq",
                            hidden_size=hid, direction=direction, **kw)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info(n, TensorProto.FLOAT, a.shape) for n, a in feeds.items()],
                              [helper.make_empty_tensor_value_info(o) for o in ("Y", "Y_h", "Y_c")],
                              [numpy_helper.from_array(a, n) for n, a in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)])
    model.ir_version = 9
    onnx.save(model, tmp_path / "m.onnx")
    return tmp_path / "m.onnx", feeds


@pytest.mark.parametrize("direction,wdt,extras,per_row", [
    ("forward", np.int8, False, False), ("reverse", np.uint8, True, False), ("bidirectional", np.int8, True, True),
    ("bidirectional", np.uint8, False, True)])
def test_dynamic_quantize_lstm_node_matches_onnxruntime(tmp_path, direction, wdt, extras, per_row):
    """Single nodes with int8 / uint8 weights (uint8: zero points), scales per direction or per gate
    row, initial states, peepholes and clip: Y, Y_h, Y_c bit-exact."""
    rng = np.random.default_rng(len(direction) + extras)
    path, feeds = _dq_lstm_node(tmp_path, rng, direction, wdt, extras, per_row=per_row)
    g = load_onnx(path, {})
    dirs = 2 if direction == "bidirectional" else 1
    assert g.total_macs == 4 * 2 * dirs * 4 * 6 * (5 + 6)
    got = run(g, feeds, pairwise_int16=PAIRS, ort_threads=THREADS).outputs
    for name, want in zip(("Y", "Y_h", "Y_c"), _ort_threads(path, feeds)):
        np.testing.assert_array_equal(got[name], want, err_msg=name)


def test_dynamic_quantize_lstm_state_scale_follows_onnxruntime_threads(tmp_path):
    """With batch 3 onnxruntime on 1 thread quantizes the whole batch's hidden state with one scale,
    on 3 threads each sequence with its own: hwsim follows ``ort_threads`` (and differs when it
    does not match)."""
    path, feeds = _dq_lstm_node(tmp_path, np.random.default_rng(11), "forward", np.int8, False, batch=3, seq=6)
    g = load_onnx(path, {})
    for threads in (1, 3):
        want = _ort_threads(path, feeds, threads)[0]
        got = run(g, feeds, pairwise_int16=PAIRS, ort_threads=threads).outputs["Y"]
        other = run(g, feeds, pairwise_int16=PAIRS, ort_threads=4 - threads).outputs["Y"]
        np.testing.assert_array_equal(got, want)
        assert np.max(np.abs(other - want)) > 1e-4 * np.ptp(want)


def test_dynamic_quantize_lstm_says_its_result_depends_on_threads(tmp_path):
    """A batch whose result depends on onnxruntime's thread count says so and names the count
    modelled (before: nothing said it, and a default 1-thread run differed from a default
    onnxruntime session on several cores by 1% of the logits' range); batch 1 does not."""
    path, feeds = _dq_lstm_node(tmp_path, np.random.default_rng(11), "forward", np.int8, False, batch=3, seq=2)
    notes = run(load_onnx(path, {}), feeds, ort_threads=2).notes
    assert any("depends on its thread count; modelled for 2 thread(s) (ort_threads)" in n for n in notes), notes
    path, feeds = _dq_lstm_node(tmp_path, np.random.default_rng(11), "forward", np.int8, False, batch=1, seq=2)
    assert not any("thread count" in n for n in run(load_onnx(path, {}), feeds).notes)


def _ort_unary(op: str, x: np.ndarray) -> np.ndarray:
    graph = helper.make_graph([helper.make_node(op, ["x"], ["y"])], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x.shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, x.shape)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]


def test_mlas_sigmoid_tanh_match_onnxruntime_bit_for_bit():
    """hwsim.sim.mlas_math against onnxruntime's own Sigmoid and Tanh ops (the MLAS kernels its LSTM
    calls) on 150k values across and beyond the clamped ranges, and against the exact functions."""
    from hwsim.sim import mlas_math

    rng = np.random.default_rng(0)
    x = np.concatenate([rng.standard_normal(100_000) * 3, rng.uniform(-25, 25, 50_000), [0.0, -0.0, 9, -9, 18, -18, 40]])
    x = x.astype(np.float32)
    np.testing.assert_array_equal(mlas_math.logistic(x), _ort_unary("Sigmoid", x))
    np.testing.assert_array_equal(mlas_math.tanh(x), _ort_unary("Tanh", x))
    assert np.max(np.abs(mlas_math.tanh(x) - np.tanh(x.astype(np.float64)))) < 1e-6
    assert np.max(np.abs(mlas_math.logistic(x) - 1 / (1 + np.exp(-x.astype(np.float64))))) < 1e-6


def test_dynamic_quantize_lstm_refusals_name_the_node(tmp_path):
    path, _ = _dq_lstm_node(tmp_path, np.random.default_rng(0), "forward", np.int8, False)
    m = onnx.load(path)
    m.graph.node[0].attribute.append(helper.make_attribute("input_forget", 1))
    onnx.save(m, path)
    with pytest.raises(UnsupportedOpError, match="DynamicQuantizeLSTM \\(node 'dq'\\): input_forget"):
        load_onnx(path, {})
    path, _ = _dq_lstm_node(tmp_path, np.random.default_rng(0), "forward", np.uint8, False, per_row=True)
    m = onnx.load(path)
    zp = next(i for i in m.graph.initializer if i.name == "rz")
    zp.CopyFrom(numpy_helper.from_array(np.arange(24, dtype=np.uint8).reshape(1, 24), "rz"))
    onnx.save(m, path)
    with pytest.raises(UnsupportedOpError, match="zero points of input 2 differ within a direction"):
        load_onnx(path, {})


def test_dynamic_quantize_lstm_estimate_prices_int8_weights(tmp_path, capsys):
    from hwsim.cli import main

    ids = np.random.default_rng(0).integers(0, 30, (1, 9)).astype(np.int64)
    np.savez(tmp_path / "in.npz", ids=ids)
    assert main(["estimate", str(DATA / "lstm_qdynamic.onnx"), "--target", "int8-npu", "--inputs",
                 str(tmp_path / "in.npz")]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if "dynamic_quantize_lstm" in line)
    assert "x int8" in row


# ------------------------------------------------------------------ QAttention
@pytest.mark.parametrize("name", ["attention_qdynamic", "attention_causal_qdynamic"])
def test_quantize_dynamic_attention_matches_onnxruntime(name):
    """quantize_dynamic's QAttention (per-tensor weights with a raw key mask; per-column weights,
    causal): within 1e-6 of the output range (mostly bit-exact: the next DynamicQuantizeLinear
    absorbs the float32 attention's order); MACs = QKV + Q K^T + P V + the head."""
    path = DATA / f"{name}.onnx"
    for seed, (batch, seq) in enumerate([(1, 6), (2, 5), (3, 7)]):
        rng = np.random.default_rng(seed)
        feeds = {"x": rng.standard_normal((batch, seq, 32)).astype(np.float32)}
        if "causal" not in name:
            feeds["mask"] = np.ones((batch, seq), np.int32)
            feeds["mask"][seed % batch, seq - 1 - seed:] = 0
        g = load_onnx(path, {k: v.shape for k, v in feeds.items()})
        assert g.total_macs == batch * seq * (32 * 96 + 2 * seq * 32 + 32 * 16)
        want = _ort_run(path, feeds)[0]
        got = run(g, feeds, requant="onnxruntime", pairwise_int16=PAIRS).outputs["y"]
        assert np.max(np.abs(got - want)) <= 1e-6 * np.ptp(want)


@pytest.mark.parametrize("starts", [False, True])
def test_qattention_key_length_mask_matches_onnxruntime(tmp_path, starts):
    """A 1-D mask_index: key lengths (batch,), or end then start positions (2 * batch,)."""
    m = onnx.load(DATA / "attention_qdynamic.onnx")
    m.graph.input[1].CopyFrom(helper.make_tensor_value_info("mask", TensorProto.INT32, [6 if starts else 3]))
    onnx.save(m, tmp_path / "m.onnx")
    rng = np.random.default_rng(4)
    feeds = {"x": rng.standard_normal((3, 7, 32)).astype(np.float32),
             "mask": np.array([7, 4, 5] + ([0, 1, 3] if starts else []), np.int32)}
    g = load_onnx(tmp_path / "m.onnx", {"x": (3, 7, 32), "mask": feeds["mask"].shape})
    want = _ort_run(tmp_path / "m.onnx", feeds)[0]
    got = run(g, feeds, requant="onnxruntime", pairwise_int16=PAIRS).outputs["y"]
    assert np.max(np.abs(got - want)) <= 1e-6 * np.ptp(want)


@pytest.mark.parametrize("what", ["past", "mask shape"])
def test_qattention_forms_hwsim_does_not_run_are_refused(tmp_path, what):
    m = onnx.load(DATA / "attention_qdynamic.onnx")
    node = next(n for n in m.graph.node if n.op_type == "QAttention")
    node.name = "qa"
    if what == "past":
        node.input[8] = "past"
        m.graph.input.append(helper.make_tensor_value_info("past", TensorProto.FLOAT, [2, 1, 4, 3, 8]))
        match = "past / present"
    else:
        m.graph.input[1].CopyFrom(helper.make_tensor_value_info("mask", TensorProto.INT32, ["batch", 2, "seq"]))
        match = "mask_index of shape"
    onnx.save(m, tmp_path / "m.onnx")
    with pytest.raises(UnsupportedOpError, match=f"QAttention \\(node 'qa'\\): .*{match}"):
        load_onnx(tmp_path / "m.onnx", {"batch": 1, "seq": 6})


def test_simulate_cli_reproduces_onnxruntime_threads_and_refuses_zero(tmp_path, capsys):
    """``hwsim simulate --ort-threads 2`` (with this CPU's pairs) is bit-exact with onnxruntime on 2
    intra-op threads at batch 3; ``--ort-threads 0`` exits 2 naming the flag."""
    from hwsim.cli import main

    ids = np.random.default_rng(3).integers(0, 30, (3, 9)).astype(np.int64)
    np.savez(tmp_path / "in.npz", ids=ids)
    path = str(DATA / "lstm_qdynamic.onnx")
    args = ["simulate", path, "--inputs", str(tmp_path / "in.npz"), "--out", str(tmp_path / "out.npz"),
            "--requant", "onnxruntime", "--ort-threads", "2"] + (["--pairwise-int16"] if PAIRS else [])
    assert main(args) == 0
    np.testing.assert_array_equal(np.load(tmp_path / "out.npz")["logits"], _ort_threads(path, {"ids": ids}, 2)[0])
    capsys.readouterr()
    assert main(["simulate", path, "--inputs", str(tmp_path / "in.npz"), "--ort-threads", "0"]) == 2
    assert "[--ort-threads]" in capsys.readouterr().err


@pytest.mark.parametrize("causal", [False, True])
def test_float_attention_matches_onnxruntime(tmp_path, causal):
    """onnxruntime's float com.microsoft Attention (the models quantize_dynamic turned into the
    QAttention ones above): within 1e-5 of the output range; MACs as QAttention's."""
    model = _script("make_ms_quant_models").attention_float(causal)
    onnx.save(model, tmp_path / "m.onnx")
    rng = np.random.default_rng(8)
    feeds = {"x": rng.standard_normal((2, 5, 32)).astype(np.float32)}
    if not causal:
        feeds["mask"] = np.array([[1, 1, 1, 1, 0], [1, 1, 0, 0, 0]], np.int32)
    g = load_onnx(tmp_path / "m.onnx", {k: v.shape for k, v in feeds.items()})
    assert g.total_macs == 2 * 5 * (32 * 96 + 2 * 5 * 32 + 32 * 16)
    want = _ort_run(tmp_path / "m.onnx", feeds)[0]
    got = run(g, feeds).outputs["y"]
    assert np.max(np.abs(got - want)) <= 1e-5 * np.ptp(want)
