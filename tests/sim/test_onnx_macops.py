"""MAC ops of imported models (Conv 1-D/3-D, ConvTranspose, LSTM, GRU): ONNX's own node tests
(generators shipped in the onnx wheel) and onnxruntime on random cases, through load_onnx + run;
MACs against the definition; the float kernels against slow loop references."""

from __future__ import annotations


import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import helper as h
from onnx import numpy_helper as nh

from hwsim.graph.onnx import load_onnx
from hwsim.sim import run
from hwsim.sim.macops import conv3d_dot, conv_transpose_2d
from tests.sim.onnx_node_cases import collect

#: input positions that stay graph inputs; the rest (weights, biases, peepholes) become initializers
RUNTIME = {"Conv": (0,), "ConvTranspose": (0,), "LSTM": (0, 5, 6), "GRU": (0, 5), "RNN": (0, 5), "Einsum": (0, 1)}


CASES = collect(["conv", "convtranspose", "lstm", "gru", "rnn", "einsum"])
#: node-test cases hwsim refuses, with the reason (each is checked to be refused, not mis-run)
REFUSED: dict[str, str] = {}


def _model(node, inputs, outputs, tmp_path):
    keep = RUNTIME[node.op_type]
    names = [n for n in node.input]
    graph_in, inits = [], []
    for i, (name, arr) in enumerate(zip(names, inputs)):
        if not name:
            continue
        if i in keep:
            graph_in.append(h.make_tensor_value_info(name, h.np_dtype_to_tensor_dtype(arr.dtype), arr.shape))
        else:
            inits.append(nh.from_array(np.asarray(arr), name))
    outs = [h.make_empty_tensor_value_info(o) for o in node.output if o]
    model = h.make_model(h.make_graph([node], "case", graph_in, outs, inits), opset_imports=[h.make_opsetid("", 21)])
    path = str(tmp_path / "case.onnx")
    onnx.save(model, path)
    feeds = {n: a.astype(np.float32) if a.dtype.name == "bfloat16" else a  # bf16 inputs are given as float32
             for i, (n, a) in enumerate(zip(names, inputs)) if n and i in keep}
    return path, feeds


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_onnx_node_tests(case, tmp_path):
    name, node, inputs, outputs = case
    path, feeds = _model(node, inputs, outputs, tmp_path)
    if name in REFUSED:
        from hwsim.errors import UnsupportedOpError

        if "onnxruntime" in REFUSED[name]:
            pytest.skip(REFUSED[name])
        with pytest.raises(UnsupportedOpError):
            load_onnx(path, {})
        return
    g = load_onnx(path, {})
    res = run(g, feeds)
    for out_name, want in zip([o for o in node.output if o], outputs):
        np.testing.assert_allclose(res.output_values[out_name], want, rtol=1e-4, atol=1e-5, err_msg=out_name)
        np.testing.assert_allclose(res.reference_outputs[out_name], want, rtol=1e-4, atol=1e-5, err_msg=out_name)


def _ort_vs_hwsim(node, inits, feeds, tmp_path, oracle="onnxruntime"):
    ins = [h.make_tensor_value_info(n, h.np_dtype_to_tensor_dtype(a.dtype), a.shape) for n, a in feeds.items()]
    outs = [h.make_empty_tensor_value_info(o) for o in node.output if o]
    model = h.make_model(h.make_graph([node], "g", ins, outs, [nh.from_array(a, n) for n, a in inits.items()]),
                         opset_imports=[h.make_opsetid("", 17)])
    path = str(tmp_path / "m.onnx")
    onnx.save(model, path)
    if oracle == "onnxruntime":
        sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        want = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds)))
    else:  # onnxruntime has no batchwise (layout=1) RNNs
        from onnx.reference import ReferenceEvaluator

        want = dict(zip([o for o in node.output if o], ReferenceEvaluator(model).run(None, feeds)))
    g = load_onnx(path, {})
    got = run(g, feeds).output_values
    for k, v in want.items():
        span = max(float(np.ptp(v)), 1e-6)
        assert np.max(np.abs(got[k] - v)) <= 1e-4 * span, k
    return g


@pytest.mark.parametrize("seed", range(4))
def test_lstm_gru_bidirectional_batchwise_match_onnxruntime(seed, tmp_path):
    rng = np.random.default_rng(seed)
    seq, batch, isz, hid = 5, 2, 3, 4
    direction = ["forward", "reverse", "bidirectional", "bidirectional"][seed]
    dirs = 2 if direction == "bidirectional" else 1
    layout = seed % 2
    xshape = (seq, batch, isz) if not layout else (batch, seq, isz)
    hshape = (dirs, batch, hid) if not layout else (batch, dirs, hid)
    for op, gates in (("LSTM", 4), ("GRU", 3), ("RNN", 1)):
        inits = {"W": rng.standard_normal((dirs, gates * hid, isz)).astype(np.float32) * 0.5,
                 "R": rng.standard_normal((dirs, gates * hid, hid)).astype(np.float32) * 0.5,
                 "B": rng.standard_normal((dirs, 2 * gates * hid)).astype(np.float32) * 0.1}
        feeds = {"X": rng.standard_normal(xshape).astype(np.float32),
                 "h0": rng.standard_normal(hshape).astype(np.float32)}
        ins = ["X", "W", "R", "B", "", "h0"]
        outs = ["Y", "Y_h"]
        kw = {}
        if op == "LSTM":
            feeds["c0"] = rng.standard_normal(hshape).astype(np.float32)
            inits["P"] = rng.standard_normal((dirs, 3 * hid)).astype(np.float32) * 0.3
            ins += ["c0", "P"]
            outs.append("Y_c")
            if not layout:  # the ONNX reference ignores clip
                kw["clip"] = 0.7
        elif op == "GRU":
            kw["linear_before_reset"] = seed % 2
        elif seed == 2:  # onnxruntime; the ONNX reference knows Tanh and Sigmoid only
            kw["activations"] = ["Relu", "Sigmoid"]
        node = h.make_node(op, ins, outs, hidden_size=hid, direction=direction, layout=layout, **kw)
        g = _ort_vs_hwsim(node, inits, feeds, tmp_path, "reference" if layout else "onnxruntime")
        macs = seq * batch * dirs * gates * hid * (isz + hid)
        assert g.total_macs == macs


@pytest.mark.parametrize("seed", range(3))
def test_conv1d_conv3d_convtranspose_match_onnxruntime(seed, tmp_path):
    rng = np.random.default_rng(seed)
    groups = [1, 2, 1][seed]
    x1 = rng.standard_normal((2, 4, 11)).astype(np.float32)
    w1 = rng.standard_normal((6, 4 // groups, 3)).astype(np.float32)
    node = h.make_node("Conv", ["x", "w", "b"], ["y"], pads=[1, 2], strides=[2], dilations=[seed + 1], group=groups)
    g = _ort_vs_hwsim(node, {"w": w1, "b": rng.standard_normal(6).astype(np.float32)}, {"x": x1}, tmp_path)
    assert g.total_macs == int(np.prod(g.tensors["y"].shape)) * (4 // groups) * 3
    x3 = rng.standard_normal((1, 4, 5, 6, 7)).astype(np.float32)
    w3 = rng.standard_normal((4, 4 // groups, 2, 3, 2)).astype(np.float32)
    node = h.make_node("Conv", ["x", "w"], ["y"], pads=[1, 0, 1, 0, 1, 1], strides=[1, 2, 1], group=groups)
    g = _ort_vs_hwsim(node, {"w": w3}, {"x": x3}, tmp_path)
    assert g.total_macs == int(np.prod(g.tensors["y"].shape)) * (4 // groups) * 12
    xt = rng.standard_normal((1, 4, 5, 6)).astype(np.float32)
    wt = rng.standard_normal((4, 6 // groups, 3, 2)).astype(np.float32)
    node = h.make_node("ConvTranspose", ["x", "w", "b"], ["y"], strides=[2, 3], pads=[1, 0, 0, 1],
                       output_padding=[1, seed % 2], dilations=[1, seed + 1], group=groups)
    g = _ort_vs_hwsim(node, {"w": wt, "b": rng.standard_normal(6).astype(np.float32)}, {"x": xt}, tmp_path)
    assert g.total_macs == xt.size * (6 // groups) * 6
    x5 = rng.standard_normal((2, 4, 3, 4, 3)).astype(np.float32)
    w5 = rng.standard_normal((4, 6 // groups, 2, 3, 2)).astype(np.float32)
    node = h.make_node("ConvTranspose", ["x", "w", "b"], ["y"], strides=[2, 1, 2], pads=[1, 0, 0, 0, 1, 1],
                       output_padding=[seed % 2, 0, 1], dilations=[1, seed + 1, 1], group=groups)
    g = _ort_vs_hwsim(node, {"w": w5, "b": rng.standard_normal(6).astype(np.float32)}, {"x": x5}, tmp_path)
    assert g.total_macs == x5.size * (6 // groups) * 12
    node = h.make_node("ConvTranspose", ["x", "w"], ["y"], strides=[2], output_shape=[14])
    g = _ort_vs_hwsim(node, {"w": rng.standard_normal((4, 3, 4)).astype(np.float32)}, {"x": x1}, tmp_path)
    assert g.tensors["y"].shape == (2, 3, 14)


def _conv_transpose_loops(x, w, stride, pads, dil, groups, out_hw):
    """The definition: every input pixel scatters its products into the output."""
    n, c, h, wd = x.shape
    _, og, kh, kw = w.shape
    cg = c // groups
    full = np.zeros((n, og * groups, out_hw[0] + pads[0] + 64, out_hw[1] + pads[1] + 64))
    for b in range(n):
        for ci in range(c):
            g = ci // cg
            for i in range(h):
                for j in range(wd):
                    for o in range(og):
                        for p in range(kh):
                            for q in range(kw):
                                full[b, g * og + o, i * stride[0] + p * dil[0], j * stride[1] + q * dil[1]] += \
                                    x[b, ci, i, j] * w[ci, o, p, q]
    return full[:, :, pads[0]:pads[0] + out_hw[0], pads[1]:pads[1] + out_hw[1]]


def test_kernels_match_loop_references():
    from types import SimpleNamespace

    rng = np.random.default_rng(5)
    x = rng.integers(-9, 9, (1, 4, 3, 4))
    w = rng.integers(-9, 9, (4, 2, 3, 2))
    op = SimpleNamespace(stride=(2, 1), dilation=(1, 2), groups=2, padding=(1, 0, 0, 1))
    got = conv_transpose_2d(x, w, op, (5, 5))
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, _conv_transpose_loops(x, w, (2, 1), (1, 0), (1, 2), 2, (5, 5)))
    x5 = rng.integers(-9, 9, (1, 2, 2, 3, 2))
    w5 = rng.integers(-9, 9, (2, 3, 2, 2, 3))
    op5 = SimpleNamespace(stride=(2, 1, 2), dilation=(1, 2, 1), groups=1, padding=(1, 0, 1, 0, 1, 0))
    got = conv_transpose_2d(x5, w5, op5, (3, 5, 5))
    full = np.zeros((1, 3, 10, 10, 10), np.int64)
    for ci, i, j, k, o, p, q, r in np.ndindex(2, 2, 3, 2, 3, 2, 2, 3):
        full[0, o, 2 * i + p, j + 2 * q, 2 * k + r] += x5[0, ci, i, j, k] * w5[ci, o, p, q, r]
    np.testing.assert_array_equal(got, full[:, :, 1:4, 0:5, 1:6])
    x3 = rng.standard_normal((1, 2, 4, 5, 3))
    w3 = rng.standard_normal((4, 1, 2, 2, 2))
    op3 = SimpleNamespace(stride=(1, 2, 1), dilation=(1, 1, 2), groups=2, padding=(0, 1, 0, 1, 0, 1))
    got = conv3d_dot(x3, w3, op3)
    xp = np.pad(x3, ((0, 0), (0, 0), (0, 1), (1, 0), (0, 1)))
    want = np.zeros(got.shape)
    for o in range(4):
        g = o // 2
        for d in range(got.shape[2]):
            for i in range(got.shape[3]):
                for j in range(got.shape[4]):
                    patch = xp[0, g, d:d + 2, 2 * i:2 * i + 2, j:j + 3:2]
                    want[0, o, d, i, j] = np.sum(patch * w3[o, 0])
    np.testing.assert_allclose(got, want, atol=1e-12)


@pytest.mark.parametrize("kind", ["conv_transpose", "conv3d", "conv_transpose3d"])
def test_integer_path_equals_float_on_the_quantized_values(kind, tmp_path):
    """int8 x int8 codes accumulated exactly == float64 product of the dequantized values."""
    from hwsim.graph.annotate import quantize_graph
    from hwsim.graph.quant import FP32
    from hwsim.sim import macops, qspec
    from hwsim.sim.registry import EXECUTORS, ExecContext

    rng = np.random.default_rng(7)
    if kind == "conv_transpose":
        node = h.make_node("ConvTranspose", ["x", "w", "b"], ["y"], strides=[2, 2], pads=[1, 0, 0, 1], group=2)
        x, w = rng.standard_normal((1, 4, 5, 5)), rng.standard_normal((4, 3, 3, 2))
    elif kind == "conv_transpose3d":
        node = h.make_node("ConvTranspose", ["x", "w", "b"], ["y"], strides=[1, 2, 2], pads=[0, 1, 0, 1, 0, 1], group=2)
        x, w = rng.standard_normal((1, 4, 3, 4, 3)), rng.standard_normal((4, 3, 2, 3, 2))
    else:
        node = h.make_node("Conv", ["x", "w", "b"], ["y"], pads=[1, 1, 0, 0, 1, 1])
        x, w = rng.standard_normal((1, 4, 4, 5, 3)), rng.standard_normal((6, 4, 2, 2, 3))
    o = 6
    inits = [nh.from_array(w.astype(np.float32), "w"), nh.from_array(rng.standard_normal(o).astype(np.float32), "b")]
    model = h.make_model(h.make_graph([node], "g", [h.make_tensor_value_info("x", 1, x.shape)],
                                      [h.make_empty_tensor_value_info("y")], inits), opset_imports=[h.make_opsetid("", 17)])
    path = str(tmp_path / "m.onnx")
    onnx.save(model, path)
    g = quantize_graph(load_onnx(path, {}), "int8", "int8", None)
    gq = run(g, {"x": x.astype(np.float32)}).graph
    gq.set_quant("y", FP32)
    op = gq.ops()[0]
    xq = qspec.quantize(x, gq.tensors["x"].quant)
    wq = qspec.quantize(w.astype(np.float32).astype(np.float64), gq.tensors["w"].quant)
    b = gq.tensors["b"].data.astype(np.float64)
    ctx = ExecContext(graph=gq, reference=False)
    assert macops._int_operands(ctx, op, [xq, wq, b]) is not None  # the integer path is taken
    got = EXECUTORS[kind](ctx, op, [xq, wq, b])
    ctx_ref = ExecContext(graph=gq, reference=True)
    want = EXECUTORS[kind](ctx_ref, op, [xq, wq, b])
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-4 * np.abs(want).max())


def test_lstm_with_dequantized_weights_matches_onnxruntime(tmp_path):
    """quantize_static-style QDQ around LSTM weights: the LSTM reads DequantizeLinear's floats."""
    rng = np.random.default_rng(3)
    hid, isz = 4, 3
    w = rng.integers(-100, 100, (1, 16, isz)).astype(np.int8)
    r = rng.integers(-100, 100, (1, 16, hid)).astype(np.int8)
    nodes = [h.make_node("DequantizeLinear", ["Wq", "s"], ["W"]), h.make_node("DequantizeLinear", ["Rq", "s"], ["R"]),
             h.make_node("LSTM", ["X", "W", "R"], ["Y", "Y_h"], hidden_size=hid)]
    inits = [nh.from_array(w, "Wq"), nh.from_array(r, "Rq"), nh.from_array(np.float32(0.01), "s")]
    model = h.make_model(h.make_graph(nodes, "g", [h.make_tensor_value_info("X", 1, [5, 2, isz])],
                                      [h.make_empty_tensor_value_info("Y"), h.make_empty_tensor_value_info("Y_h")],
                                      inits), opset_imports=[h.make_opsetid("", 17)])
    path = str(tmp_path / "q.onnx")
    onnx.save(model, path)
    feeds = {"X": rng.standard_normal((5, 2, isz)).astype(np.float32)}
    want = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, feeds)
    g = load_onnx(path, {})
    got = run(g, feeds).output_values
    np.testing.assert_allclose(got["Y"], want[0], atol=1e-6)
    assert any("DequantizeLinear" in n for n in g.notes)


@pytest.mark.parametrize("eq,sa,sb,const_b,macs", [
    ("bhqd,bhkd->bhqk", (2, 3, 4, 5), (2, 3, 6, 5), False, 2 * 3 * 4 * 6 * 5),  # attention scores
    ("bhqk,bhkd->bqhd", (2, 3, 4, 6), (2, 3, 6, 5), False, 2 * 3 * 4 * 5 * 6),  # output in another order
    ("...ij,...jk", (2, 3, 4), (2, 4, 5), False, 2 * 3 * 5 * 4),  # ellipsis, implicit output
    ("bsd,df->bsf", (2, 7, 8), (8, 6), True, 2 * 7 * 6 * 8),  # constant weight: a linear layer
    ("ij,jk->ki", (3, 4), (4, 5), True, 3 * 5 * 4),
    ("abc,cd->d", (2, 3, 4), (4, 5), False, 4 * 5),  # a, b summed out of the first operand before the product
    ("ij,kl->ijkl", (2, 3), (4, 2), False, 2 * 3 * 4 * 2),  # outer product
    ("ijx,jk->ik", (3, 4, 2), (4, 5), False, 3 * 5 * 4)])  # x summed inside the first operand alone
def test_einsum_matches_onnxruntime_and_counts_matmul_macs(eq, sa, sb, const_b, macs, tmp_path):
    rng = np.random.default_rng(len(eq))
    a, b = rng.standard_normal(sa).astype(np.float32), rng.standard_normal(sb).astype(np.float32)
    node = h.make_node("Einsum", ["a", "b"], ["y"], equation=eq)
    g = _ort_vs_hwsim(node, {"b": b} if const_b else {}, {"a": a, **({} if const_b else {"b": b})}, tmp_path)
    assert g.total_macs == macs
    assert sum(op.op in ("linear", "matmul") for op in g.ops()) == 1
    assert any(op.op == "linear" for op in g.ops()) == const_b


@pytest.mark.parametrize("eq,shapes,why", [("ij,jk,kl->il", [(2, 3), (3, 4), (4, 5)], "3 operands"),
                                           ("ii,ij->j", [(3, 3), (3, 4)], "repeated inside one operand"),
                                           ("ij,jk->ik", [(2, 3), (1, 4)], "sizes 3 and 1")])
def test_einsum_forms_without_a_kernel_are_refused_naming_the_node(eq, shapes, why, tmp_path):
    from hwsim.errors import UnsupportedOpError

    names = [f"x{i}" for i in range(len(shapes))]
    node = h.make_node("Einsum", names, ["y"], name="es", equation=eq)
    ins = [h.make_tensor_value_info(n, 1, s) for n, s in zip(names, shapes)]
    model = h.make_model(h.make_graph([node], "g", ins, [h.make_empty_tensor_value_info("y")]),
                         opset_imports=[h.make_opsetid("", 17)])
    onnx.save(model, tmp_path / "m.onnx")
    with pytest.raises(UnsupportedOpError, match=f"Einsum \\(node 'es'\\): .*{why}"):
        load_onnx(tmp_path / "m.onnx", {})


@pytest.mark.parametrize("eq,shape,ops", [("ij->ji", (3, 4), {"transpose"}), ("ijk->ki", (2, 3, 4), {"reduce", "transpose"}),
                                          ("ijk->j", (2, 3, 4), {"reduce"}), ("...ii->...i", (2, 3, 3), {"onnx"})])
def test_einsum_of_one_operand_has_no_macs(eq, shape, ops, tmp_path):
    """Sums and transposes as reduce / transpose (priced per element they read), a diagonal through
    the generic path; no MACs; values as onnxruntime's."""
    node = h.make_node("Einsum", ["a"], ["y"], equation=eq)
    a = np.random.default_rng(2).standard_normal(shape).astype(np.float32)
    g = _ort_vs_hwsim(node, {}, {"a": a}, tmp_path)
    assert g.total_macs == 0 and {op.op for op in g.ops()} == ops
