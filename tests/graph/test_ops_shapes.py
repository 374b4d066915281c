"""Shape inference of every op kind checked against what numpy computes on real arrays."""


import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim.errors import ShapeError
from hwsim.graph import ops as O

RNG = np.random.default_rng(0)


def _op(cls, n_in=1, **kw):
    return cls(name="t", inputs=tuple(f"i{k}" for k in range(n_in)), outputs=("o",), **kw)


def _conv_numpy(x, w, stride, pad, dil, groups):
    """Direct convolution with numpy windows (the obvious definition)."""
    x = np.pad(x, ((0, 0), (0, 0), (pad[0], pad[2]), (pad[1], pad[3])))
    n, c, h, wd = x.shape
    o, i, kh, kw = w.shape
    ekh, ekw = dil[0] * (kh - 1) + 1, dil[1] * (kw - 1) + 1
    oh, ow = (h - ekh) // stride[0] + 1, (wd - ekw) // stride[1] + 1
    out = np.zeros((n, o, oh, ow))
    og = o // groups
    for g in range(groups):
        xs = x[:, g * i:(g + 1) * i]
        for y in range(oh):
            for z in range(ow):
                patch = xs[:, :, y * stride[0]:y * stride[0] + ekh:dil[0], z * stride[1]:z * stride[1] + ekw:dil[1]]
                out[:, g * og:(g + 1) * og, y, z] = np.einsum("ncij,ocij->no", patch, w[g * og:(g + 1) * og])
    return out


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 2), st.sampled_from([1, 2, 4]), st.integers(1, 3), st.integers(3, 9), st.integers(3, 9),
       st.integers(1, 3), st.integers(1, 2), st.integers(0, 2), st.integers(1, 2))
def test_conv2d_shape_and_macs_match_direct_convolution(n, groups, cpg, h, w, k, s, p, d):
    c, o = groups * cpg, groups * 2
    if d * (k - 1) + 1 > h + 2 * p or d * (k - 1) + 1 > w + 2 * p:
        return
    op = _op(O.Conv2d, 2, stride=(s, s), padding=(p, p, p, p), dilation=(d, d), groups=groups)
    x, wt = RNG.standard_normal((n, c, h, w)), RNG.standard_normal((o, cpg, k, k))
    ref = _conv_numpy(x, wt, (s, s), (p, p, p, p), (d, d), groups)
    (shape,) = op.infer([x.shape, wt.shape])
    assert shape == ref.shape
    assert op.macs([x.shape, wt.shape], [shape]) == ref.size * cpg * k * k


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 4), min_size=0, max_size=3), st.integers(1, 5), st.integers(1, 5), st.integers(1, 5),
       st.booleans())
def test_matmul_batched_broadcast(batch, m, k, n, drop_batch):
    a = RNG.standard_normal(tuple(batch) + (m, k))
    b = RNG.standard_normal((() if drop_batch else tuple(batch)) + (k, n))
    op = _op(O.MatMul, 2)
    assert op.infer([a.shape, b.shape]) == [np.matmul(a, b).shape]
    assert op.macs([a.shape, b.shape], [np.matmul(a, b).shape]) == np.matmul(a, b).size * k


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 3), min_size=1, max_size=4), st.lists(st.integers(1, 3), min_size=1, max_size=4))
def test_binary_broadcast_matches_numpy(s1, s2):
    op = _op(O.Binary, 2, fn="add")
    try:
        expected = (np.zeros(s1) + np.zeros(s2)).shape
    except ValueError:
        with pytest.raises(ShapeError, match="broadcast"):
            op.infer([tuple(s1), tuple(s2)])
        return
    assert op.infer([tuple(s1), tuple(s2)]) == [expected]


def test_linear_matches_numpy():
    x, w = RNG.standard_normal((2, 3, 5)), RNG.standard_normal((7, 5))
    op = _op(O.Linear, 2)
    assert op.infer([x.shape, w.shape]) == [(x @ w.T).shape]
    with pytest.raises(ShapeError, match="does not match weight"):
        op.infer([(2, 4), (7, 5)])


@pytest.mark.parametrize("kind,k,s,p,ceil,n", [("max", 3, 2, 1, False, 11), ("avg", 2, 2, 0, False, 11),
                                               ("max", 3, 2, 0, True, 11), ("avg", 3, 1, 1, False, 11),
                                               ("max", 2, 2, 1, True, 5)])
def test_pool_matches_window_count(kind, k, s, p, ceil, n):
    """Count windows directly: in ceil mode one more window is taken while the previous one does not
    reach the end, but it must start inside the input or its begin padding (PyTorch / ONNX rule)."""
    op = _op(O.Pool, kind=kind, kernel=(k, k), stride=(s, s), padding=(p, p, p, p), ceil_mode=ceil)
    starts = range(0, n + 2 * p, s)
    if ceil:
        n_out = sum(1 for st in starts if (st == 0 or st - s + k < n + 2 * p) and st < n + p)
    else:
        n_out = sum(1 for st in starts if st + k <= n + 2 * p)
    assert op.infer([(1, 2, n, n)]) == [(1, 2, n_out, n_out)]


def test_movement_ops_match_numpy():
    x = RNG.standard_normal((2, 3, 4, 1))
    assert _op(O.Reshape, shape=(0, -1)).infer([x.shape]) == [x.reshape(2, -1).shape]
    assert _op(O.Transpose, perm=(3, 1, 0, 2)).infer([x.shape]) == [x.transpose(3, 1, 0, 2).shape]
    assert _op(O.Flatten, axis=2).infer([x.shape]) == [x.reshape(6, 4).shape]
    assert _op(O.Flatten, axis=-1).infer([x.shape]) == [x.reshape(24, 1).shape]  # ONNX: -1 means rank-1
    assert _op(O.Flatten, axis=0).infer([x.shape]) == [x.reshape(1, 24).shape]
    assert _op(O.Squeeze, axes=(-1,)).infer([x.shape]) == [np.squeeze(x, -1).shape]
    assert _op(O.Unsqueeze, axes=(0, 5)).infer([x.shape]) == [np.expand_dims(x, (0, 5)).shape]
    assert _op(O.Concat, 2, axis=1).infer([x.shape, (2, 5, 4, 1)]) == [np.concatenate([x, np.zeros((2, 5, 4, 1))], 1).shape]
    assert (_op(O.Slice, starts=(1, -3), ends=(3, 100), axes=(1, 2), steps=(1, 2)).infer([x.shape])
            == [x[:, 1:3, -3:100:2].shape])
    idx = np.array([[0, 2], [1, 1]])
    assert _op(O.Gather, 2, axis=1).infer([x.shape, idx.shape]) == [np.take(x, idx, axis=1).shape]
    table = RNG.standard_normal((10, 6))
    assert _op(O.Embedding, 2).infer([idx.shape, table.shape]) == [table[idx].shape]
    assert _op(O.Reduce, fn="mean", axes=(1, -1), keepdims=False).infer([x.shape]) == [x.mean((1, 3)).shape]
    assert _op(O.Reduce, fn="mean", axes=(1,), keepdims=True).infer([x.shape]) == [x.mean(1, keepdims=True).shape]
    assert _op(O.GlobalAvgPool).infer([x.shape]) == [x.mean((2, 3), keepdims=True).shape]


def test_shape_errors_are_clear():
    with pytest.raises(ShapeError, match="cannot reshape"):
        _op(O.Reshape, shape=(5, -1)).infer([(2, 3)])
    with pytest.raises(ShapeError, match="channels"):
        _op(O.Conv2d, 2).infer([(1, 3, 8, 8), (4, 2, 3, 3)])
    with pytest.raises(ShapeError, match="cannot multiply"):
        _op(O.MatMul, 2).infer([(2, 3), (4, 5)])
    with pytest.raises(ShapeError, match="permutation"):
        _op(O.Transpose, perm=(0, 0)).infer([(2, 3)])
    with pytest.raises(ShapeError, match="do not match cache"):
        _op(O.KVCacheAppend, 2).infer([(1, 2, 5, 8), (1, 3, 1, 8)])


def test_norms_softmax_rotary_keep_shape_and_count_ops():
    x = (2, 4, 6, 8)
    assert _op(O.Softmax, axis=-1).infer([x]) == [x]
    assert _op(O.LayerNorm, 2).infer([x, (8,)]) == [x]
    with pytest.raises(ShapeError):
        _op(O.LayerNorm, 2).infer([x, (7,)])
    rot = _op(O.Rotary)
    assert rot.infer([x]) == [x] and rot.elementwise_ops([x], [x]) == 3 * 2 * 4 * 6 * 8
    with pytest.raises(ShapeError, match="rotary_dim"):
        _op(O.Rotary).infer([(2, 4, 6, 7)])


def test_dynamic_quantize_parts():
    x = (2, 3, 5)
    assert _op(O.DynamicQuantize, part="y").infer([x]) == [x]
    assert _op(O.DynamicQuantize, part="scale").infer([x]) == [()]
    assert _op(O.DynamicQuantize, part="zero_point").infer([x]) == [()]


def test_every_op_kind_is_covered_here():
    covered = {"conv2d", "matmul", "binary", "linear", "pool", "reshape", "transpose", "flatten", "squeeze",
               "unsqueeze", "concat", "slice", "gather", "embedding", "reduce", "global_avgpool", "softmax",
               "layernorm", "rotary", "kv_cache_append", "dynamic_quantize",
               "conv3d", "conv_transpose", "lstm", "gru", "onnx",  # these: test_imported_mac_op_shapes
               "dynamic_quantize_lstm", "rnn", "conv_transpose3d", "linear_block_int8"}
    trivial = {"unary", "batchnorm", "kv_cache_read", "quantize", "dequantize", "cast"}  # identity shapes
    assert set(O.OP_CLASSES) - covered - trivial == set(), "new op kind: add its shape test"


def test_imported_mac_op_shapes():
    """conv3d / conv_transpose / lstm / gru / onnx shapes and MACs against onnx shape inference."""
    import onnx
    from onnx import helper as h

    def onnx_shape(node, shapes):
        ins = [h.make_tensor_value_info(n, 1, s) for n, s in zip(node.input, shapes)]
        m = h.make_model(h.make_graph([node], "g", ins, [h.make_empty_tensor_value_info(node.output[0])]),
                         opset_imports=[h.make_opsetid("", 18)])
        out = onnx.shape_inference.infer_shapes(m, strict_mode=True).graph.output[0]
        return tuple(d.dim_value for d in out.type.tensor_type.shape.dim)

    node = h.make_node("Conv", ["x", "w"], ["y"], strides=[1, 2, 2], pads=[1, 0, 1, 1, 0, 1], group=2)
    c3 = _op(O.Conv3d, 2, stride=(1, 2, 2), padding=(1, 0, 1, 1, 0, 1), groups=2)
    x, w = (1, 4, 5, 9, 8), (6, 2, 3, 3, 2)
    assert c3.infer([x, w]) == [onnx_shape(node, [x, w])]
    assert c3.macs([x, w], c3.infer([x, w])) == int(np.prod(c3.infer([x, w])[0])) * 2 * 3 * 3 * 2
    node = h.make_node("ConvTranspose", ["x", "w"], ["y"], strides=[2, 3], pads=[1, 0, 0, 2], output_padding=[1, 0])
    ct = _op(O.ConvTranspose, 2, stride=(2, 3), padding=(1, 0, 0, 2), output_padding=(1, 0))
    x, w = (2, 3, 5, 4), (3, 4, 3, 3)
    assert ct.infer([x, w]) == [onnx_shape(node, [x, w])]
    assert ct.macs([x, w], ct.infer([x, w])) == 2 * 3 * 5 * 4 * 4 * 3 * 3
    lstm = _op(O.LSTM, 3, hidden=4, direction="bidirectional", activations=("Sigmoid", "Tanh", "Tanh") * 2)
    assert lstm.infer([(7, 2, 3), (2, 16, 7), (2, 32)]) == [(9, 2, 2, 4)]  # Y rows + Y_h + Y_c
    assert lstm.macs([(7, 2, 3), (2, 16, 7), (2, 32)], []) == 7 * 2 * 2 * 16 * 7
    node = h.make_node("ConvTranspose", ["x", "w"], ["y"], strides=[2, 1, 3], pads=[1, 0, 0, 0, 2, 1],
                       output_padding=[1, 0, 2])
    ct3 = _op(O.ConvTranspose3d, 2, stride=(2, 1, 3), padding=(1, 0, 0, 0, 2, 1), output_padding=(1, 0, 2))
    x, w = (1, 3, 4, 5, 3), (3, 2, 2, 3, 4)
    assert ct3.infer([x, w]) == [onnx_shape(node, [x, w])]
    assert ct3.macs([x, w], ct3.infer([x, w])) == 3 * 4 * 5 * 3 * 2 * 2 * 3 * 4
    bl, lin = _op(O.BlockInt8Linear, 2, block_size=32), _op(O.Linear, 2)
    assert bl.infer([(3, 5, 80), (24, 80)]) == lin.infer([(3, 5, 80), (24, 80)]) == [(3, 5, 24)]
    assert bl.macs([(3, 5, 80), (24, 80)], [(3, 5, 24)]) == 3 * 5 * 24 * 80  # linear's count
    rnn = _op(O.RNN, 3, hidden=4, activations=("Tanh",))
    assert rnn.infer([(7, 2, 3), (1, 4, 7), (1, 8)]) == [(8, 1, 2, 4)]  # Y rows + Y_h
    assert rnn.macs([(7, 2, 3), (1, 4, 7), (1, 8)], []) == 7 * 2 * 4 * 7
    dq = _op(O.DynamicQuantizeLSTM, 3, hidden=4, direction="bidirectional", activations=("Sigmoid", "Tanh", "Tanh") * 2)
    assert dq.infer([(7, 2, 32), (32, 4), (2, 32)]) == [(9, 2, 2, 4)]  # XW, R rows of both directions
    assert dq.macs([(7, 2, 32), (32, 4), (2, 32)], []) == 7 * 2 * 2 * 16 * 4  # the recurrent GEMMs only
    with pytest.raises(ShapeError, match="R has shape"):
        dq.infer([(7, 2, 32), (16, 4), (2, 32)])
    gru = _op(O.GRU, 3, hidden=4, activations=("Sigmoid", "Tanh"))
    assert gru.infer([(7, 2, 3), (1, 12, 7), (1, 24)]) == [(8, 1, 2, 4)]
    with pytest.raises(ShapeError, match="W|R"):
        gru.infer([(7, 2, 3), (1, 12, 6), (1, 24)])
    gen = _op(O.OnnxNode, 1, op_type="Pad", node_b64="", opset=18, names=("i0",), elem_types=(1,),
              in_shapes=((2, 3),), out_shape=(4, 3))
    assert gen.infer([(2, 3)]) == [(4, 3)] and gen.elementwise_ops([(2, 3)], [(4, 3)]) == 12
    with pytest.raises(ShapeError, match="imported with"):
        gen.infer([(2, 4)])
