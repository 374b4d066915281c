"""How tests/data/yolo_like.onnx and tests/data/speech_like.onnx are made (onnx.helper + numpy, seeded;
``python tests/data/make_corpus_models.py`` rewrites both; the tests check the files are what this
script builds).

- yolo_like: a YOLO-style detector. Conv+BN+SiLU backbone (stride 2 x3), SPPF-style MaxPool, an FPN
  neck with a nearest Resize (scales) and a ConvTranspose upsample, per-level 1x1 heads reshaped and
  concatenated to (batch, anchors, 4 + 1 + 3), NonMaxSuppression over the class scores (an output
  whose shape depends on values), a bilinear Resize (sizes) mask head, and TopK over the objectness. Input ``images`` (batch, 3, height, width), all dynamic.
- speech_like: a silero-VAD-style model. ``If(sr == 16000)`` picks a 1-D conv front end (frame 32 /
  hop 16, or 16 / 8 at 8 kHz), then 1-D convs, an LSTM carrying ``state`` (h and c stacked), a 1x1
  conv, Sigmoid and a mean: outputs ``output`` (batch, 1) and ``stateN``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto as TP
from onnx import helper as h
from onnx import numpy_helper as nh

HERE = Path(__file__).parent


class _Builder:
    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.k = 0

    def name(self, base: str) -> str:
        self.k += 1
        return f"{base}_{self.k}"

    def const(self, arr, base: str = "c") -> str:
        n = self.name(base)
        self.inits.append(nh.from_array(np.asarray(arr), n))
        return n

    def weight(self, shape, base: str = "w") -> str:
        fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
        return self.const((self.rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32), base)

    def node(self, op: str, ins, n_out: int = 1, **attrs) -> list[str]:
        outs = [self.name(op.lower()) for _ in range(n_out)]
        self.nodes.append(h.make_node(op, list(ins), outs, name=outs[0], **attrs))
        return outs

    def conv_bn_silu(self, x: str, cin: int, cout: int, k: int, s: int) -> str:
        y = self.node("Conv", [x, self.weight((cout, cin, k, k))], kernel_shape=[k, k], strides=[s, s],
                      pads=[k // 2] * 4)[0]
        gamma = self.const((1 + 0.1 * self.rng.standard_normal(cout)).astype(np.float32), "bn_g")
        beta = self.const((0.1 * self.rng.standard_normal(cout)).astype(np.float32), "bn_b")
        mean = self.const((0.1 * self.rng.standard_normal(cout)).astype(np.float32), "bn_m")
        var = self.const((1 + 0.1 * self.rng.random(cout)).astype(np.float32), "bn_v")
        y = self.node("BatchNormalization", [y, gamma, beta, mean, var], epsilon=1e-3)[0]
        return self.node("Mul", [y, self.node("Sigmoid", [y])[0]])[0]


def yolo_like() -> onnx.ModelProto:
    b = _Builder(0)
    p3 = b.conv_bn_silu("images", 3, 8, 3, 2)
    p4 = b.conv_bn_silu(p3, 8, 16, 3, 2)
    p5 = b.conv_bn_silu(p4, 16, 32, 3, 2)
    pool = b.node("MaxPool", [p5], kernel_shape=[5, 5], strides=[1, 1], pads=[2, 2, 2, 2])[0]
    p5 = b.conv_bn_silu(b.node("Concat", [p5, pool], axis=1)[0], 64, 32, 1, 1)
    up = b.node("Resize", [p5, "", b.const(np.array([1, 1, 2, 2], np.float32), "scales")], mode="nearest")[0]
    n4 = b.conv_bn_silu(b.node("Concat", [up, p4], axis=1)[0], 48, 16, 1, 1)
    upt = b.node("ConvTranspose", [n4, b.weight((16, 8, 2, 2)), b.const(np.zeros(8, np.float32), "ct_b")],
                 kernel_shape=[2, 2], strides=[2, 2])[0]
    n3 = b.conv_bn_silu(b.node("Concat", [upt, p3], axis=1)[0], 16, 8, 3, 1)
    heads = []
    for feat, c in ((n3, 8), (n4, 16), (p5, 32)):
        y = b.node("Conv", [feat, b.weight((8, c, 1, 1)), b.const(np.zeros(8, np.float32), "hb")], kernel_shape=[1, 1])[0]
        heads.append(b.node("Reshape", [y, b.const(np.array([0, 8, -1], np.int64), "shape")])[0])
    pred = b.node("Transpose", [b.node("Concat", heads, axis=2)[0]], perm=[0, 2, 1])[0]
    boxes, obj, cls = b.node("Split", [pred, b.const(np.array([4, 1, 3], np.int64), "split")], 3, axis=2)
    scores = b.node("Sigmoid", [obj])[0]
    cls_p = b.node("Sigmoid", [cls])[0]
    b.nodes.append(h.make_node("Concat", [boxes, scores, cls_p], ["output0"], axis=2, name="output0"))
    b.nodes.append(h.make_node("NonMaxSuppression", [boxes, b.node("Transpose", [cls_p], perm=[0, 2, 1])[0],
                                                     b.const(np.array([5], np.int64), "max_per_class"),
                                                     b.const(np.array([0.5], np.float32), "iou"),
                                                     b.const(np.array([0.55], np.float32), "score_min")],
                               ["selected"], center_point_box=1, name="nms"))
    flat = b.node("Squeeze", [scores, b.const(np.array([2], np.int64), "ax")])[0]
    b.nodes.append(h.make_node("TopK", [flat, b.const(np.array([10], np.int64), "k")], ["top_scores", "top_index"],
                               axis=1, name="topk"))
    mask = b.node("Conv", [n3, b.weight((1, 8, 1, 1))], kernel_shape=[1, 1])[0]
    shape = b.node("Shape", ["images"])[0]  # the mask comes back at the input's height and width
    batch = b.node("Slice", [shape, b.const(np.array([0], np.int64)), b.const(np.array([1], np.int64))])[0]
    hw = b.node("Slice", [shape, b.const(np.array([2], np.int64)), b.const(np.array([4], np.int64))])[0]
    sizes = b.node("Concat", [batch, b.const(np.array([1], np.int64)), hw], axis=0)[0]
    b.nodes.append(h.make_node("Resize", [mask, "", "", sizes], ["mask"], mode="linear", name="mask_resize",
                               coordinate_transformation_mode="half_pixel"))
    graph = h.make_graph(b.nodes, "yolo_like",
                         [h.make_tensor_value_info("images", TP.FLOAT, ["batch", 3, "height", "width"])],
                         [h.make_tensor_value_info("output0", TP.FLOAT, ["batch", "anchors", 8]),
                          h.make_tensor_value_info("top_scores", TP.FLOAT, ["batch", 10]),
                          h.make_tensor_value_info("top_index", TP.INT64, ["batch", 10]),
                          h.make_tensor_value_info("selected", TP.INT64, ["detections", 3]),
                          h.make_tensor_value_info("mask", TP.FLOAT, ["batch", 1, "height", "width"])], b.inits)
    return _finish(graph)


def _front_end(b: _Builder, frame: int, hop: int, tag: str) -> onnx.GraphProto:
    """One If branch: (batch, samples) -> (batch, 16, frames) by a 1-D conv filterbank + Relu."""
    x3 = b.node("Unsqueeze", ["input", b.const(np.array([1], np.int64), f"{tag}_ax")])[0]
    spec = b.node("Conv", [x3, b.weight((16, 1, frame), f"{tag}_fb")], kernel_shape=[frame], strides=[hop])[0]
    nodes, b.nodes = b.nodes[-2:], b.nodes[:-2]
    nodes.append(h.make_node("Relu", [spec], [f"{tag}_feat"], name=f"{tag}_relu"))
    return h.make_graph(nodes, tag, [], [h.make_tensor_value_info(f"{tag}_feat", TP.FLOAT, None)])


def speech_like() -> onnx.ModelProto:
    b = _Builder(1)
    hid = 32
    then_g, else_g = _front_end(b, 32, 16, "fe16k"), _front_end(b, 16, 8, "fe8k")
    is16 = b.node("Equal", ["sr", b.const(np.array(16000, np.int64), "k16000")])[0]
    b.nodes.append(h.make_node("If", [is16], ["feat"], name="by_sample_rate", then_branch=then_g, else_branch=else_g))
    y = b.node("Relu", [b.node("Conv", ["feat", b.weight((32, 16, 3))], kernel_shape=[3], pads=[1, 1])[0]])[0]
    y = b.node("Relu", [b.node("Conv", [y, b.weight((32, 32, 3))], kernel_shape=[3], strides=[2], pads=[1, 1])[0]])[0]
    seq = b.node("Transpose", [y], perm=[2, 0, 1])[0]  # (frames, batch, 32)
    h0, c0 = b.node("Split", ["state", b.const(np.array([1, 1], np.int64), "hc")], 2, axis=0)
    w = (b.rng.standard_normal((1, 4 * hid, 32)) * 0.2).astype(np.float32)
    r = (b.rng.standard_normal((1, 4 * hid, hid)) * 0.2).astype(np.float32)
    bias = (b.rng.standard_normal((1, 8 * hid)) * 0.1).astype(np.float32)
    ys, yh, yc = b.node("LSTM", [seq, b.const(w, "W"), b.const(r, "R"), b.const(bias, "B"), "", h0, c0], 3,
                        hidden_size=hid)
    b.nodes.append(h.make_node("Concat", [yh, yc], ["stateN"], axis=0, name="stateN"))
    last = b.node("Squeeze", [ys, b.const(np.array([1], np.int64), "dir")])[0]  # (frames, batch, hid)
    z = b.node("Relu", [b.node("Transpose", [last], perm=[1, 2, 0])[0]])[0]  # (batch, hid, frames)
    logit = b.node("Conv", [z, b.weight((1, hid, 1)), b.const(np.zeros(1, np.float32), "db")], kernel_shape=[1])[0]
    prob = b.node("Sigmoid", [logit])[0]
    b.nodes.append(h.make_node("ReduceMean", [prob, b.const(np.array([2], np.int64), "t")], ["output"], keepdims=0,
                               name="output"))
    graph = h.make_graph(b.nodes, "speech_like",
                         [h.make_tensor_value_info("input", TP.FLOAT, ["batch", "samples"]),
                          h.make_tensor_value_info("state", TP.FLOAT, [2, "batch", hid]),
                          h.make_tensor_value_info("sr", TP.INT64, [])],
                         [h.make_tensor_value_info("output", TP.FLOAT, ["batch", 1]),
                          h.make_tensor_value_info("stateN", TP.FLOAT, [2, "batch", hid])], b.inits)
    return _finish(graph)


def _finish(graph: onnx.GraphProto) -> onnx.ModelProto:
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", 18)], ir_version=9,
                         producer_name="hwsim tests/data/make_corpus_models.py")
    onnx.checker.check_model(model, full_check=True)
    return model


MODELS = {"yolo_like": yolo_like, "speech_like": speech_like}


def main() -> None:
    for name, build in MODELS.items():
        onnx.save(build(), HERE / f"{name}.onnx")


if __name__ == "__main__":
    main()
