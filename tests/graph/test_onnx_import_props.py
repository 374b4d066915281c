"""Property tests: imported conv / pool shapes equal onnxruntime's, conv MACs follow the rule."""

from __future__ import annotations

import math

import numpy as np
import onnx
import onnxruntime as ort
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto as TP
from onnx import helper as h
from onnx import numpy_helper as nh

from hwsim.graph.onnx import load_onnx

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _run(model: onnx.ModelProto, x: np.ndarray) -> tuple:
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {"x": x})[0].shape


@st.composite
def conv_cases(draw):
    groups = draw(st.sampled_from([1, 2]))
    cin, cout = groups * draw(st.integers(1, 3)), groups * draw(st.integers(1, 3))
    k = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    auto = draw(st.sampled_from(["NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"]))
    # onnxruntime rejects dilation with SAME padding
    dil = (draw(st.integers(1, 2)), draw(st.integers(1, 2))) if auto in ("NOTSET", "VALID") else (1, 1)
    pads = [draw(st.integers(0, 2)) for _ in range(4)] if auto == "NOTSET" else None
    hw = (draw(st.integers(9, 14)), draw(st.integers(9, 14)))
    return groups, cin, cout, k, stride, dil, auto, pads, hw


@SETTINGS
@given(conv_cases())
def test_conv_shapes_and_macs_match_onnxruntime(tmp_path, case):
    groups, cin, cout, k, stride, dil, auto, pads, hw = case
    attrs = dict(strides=list(stride), dilations=list(dil), group=groups, auto_pad=auto)
    if pads is not None:
        attrs["pads"] = pads
    w = nh.from_array(np.ones((cout, cin // groups) + k, np.float32), "w")
    node = h.make_node("Conv", ["x", "w"], ["y"], name="conv", **attrs)
    model = h.make_model(h.make_graph([node], "c", [h.make_tensor_value_info("x", TP.FLOAT, [1, cin, *hw])],
                                      [h.make_tensor_value_info("y", TP.FLOAT, None)], [w]),
                         opset_imports=[h.make_opsetid("", 17)])
    path = str(tmp_path / "conv.onnx")
    onnx.save(model, path)
    g = load_onnx(path, {})
    want = _run(model, np.zeros((1, cin, *hw), np.float32))
    assert g.tensors["y"].shape == want
    assert g.total_macs == math.prod(want) * (cin // groups) * k[0] * k[1]


@SETTINGS
@given(kind=st.sampled_from(["MaxPool", "AveragePool"]), k=st.integers(1, 4), s=st.integers(1, 3),
       pad=st.integers(0, 1), ceil=st.integers(0, 1), size=st.integers(5, 12))
def test_pool_shapes_match_onnxruntime(tmp_path, kind, k, s, pad, ceil, size):
    if pad * 2 > k:  # ONNX requires pads smaller than the kernel
        pad = 0
    node = h.make_node(kind, ["x"], ["y"], name="pool", kernel_shape=[k, k], strides=[s, s],
                       pads=[pad] * 4, ceil_mode=ceil)
    model = h.make_model(h.make_graph([node], "p", [h.make_tensor_value_info("x", TP.FLOAT, [1, 2, size, size])],
                                      [h.make_tensor_value_info("y", TP.FLOAT, None)]),
                         opset_imports=[h.make_opsetid("", 17)])
    path = str(tmp_path / "pool.onnx")
    onnx.save(model, path)
    g = load_onnx(path, {})
    assert g.tensors["y"].shape == _run(model, np.zeros((1, 2, size, size), np.float32))
