"""Float ONNX models built with onnx.helper and quantized by onnxruntime's ``quantize_static`` (QDQ),
for the simulator speed benchmark (``bench_sim.py``): a ResNet-18-shaped CNN, a BERT-shaped encoder
and a MobileNetV2. Weights are seeded random (He-scaled), so the models are shaped like the real ones
but carry no trained values.
"""

import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


class _Builder:
    def __init__(self, seed: int = 0):
        self.rng, self.nodes, self.inits, self.n = np.random.default_rng(seed), [], [], 0

    def name(self, p):
        self.n += 1
        return f"{p}{self.n}"

    def const(self, arr, p="c"):
        nm = self.name(p)
        self.inits.append(numpy_helper.from_array(np.asarray(arr, np.float32), nm))
        return nm

    def weight(self, *shape, fan_in=None):
        fan_in = fan_in or int(np.prod(shape[1:]))
        return self.const(self.rng.standard_normal(shape) * np.sqrt(2.0 / fan_in), "w")

    def node(self, op, ins, **attrs):
        out = self.name(op.lower())
        self.nodes.append(helper.make_node(op, ins, [out], **attrs))
        return out

    def conv(self, x, cin, cout, k, stride=1, groups=1, act="relu"):
        w = self.weight(cout, cin // groups, k, k)
        b = self.const(self.rng.standard_normal(cout) * 0.05, "b")
        y = self.node("Conv", [x, w, b], pads=[k // 2] * 4, strides=[stride] * 2, group=groups)
        if act == "relu":
            return self.node("Relu", [y])
        if act == "relu6":
            return self.node("Clip", [y, self.const(0.0), self.const(6.0)])
        return y

    def model(self, x_shape, y, y_shape, opset=17):
        g = helper.make_graph(self.nodes, "bench", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
                              [helper.make_tensor_value_info(y, TensorProto.FLOAT, y_shape)], self.inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
        m.ir_version = 9
        return m


def resnet18(batch: int = 8, res: int = 224):
    b = _Builder(0)
    x = b.conv("x", 3, 64, 7, 2)
    x = b.node("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2], pads=[1] * 4)
    cin = 64
    for i, c in enumerate((64, 128, 256, 512)):
        for j in range(2):
            s = 2 if (i > 0 and j == 0) else 1
            y = b.conv(x, cin, c, 3, s)
            y = b.conv(y, c, c, 3, 1, act=None)
            sc = b.conv(x, cin, c, 1, s, act=None) if (s != 1 or cin != c) else x
            x = b.node("Relu", [b.node("Add", [y, sc])])
            cin = c
    x = b.node("Flatten", [b.node("GlobalAveragePool", [x])])
    y = b.node("Gemm", [x, b.weight(1000, 512), b.const(np.zeros(1000))], transB=1)
    return b.model((batch, 3, res, res), y, (batch, 1000)), (batch, 3, res, res)


def mobilenet_v2(batch: int = 8, res: int = 224):
    b = _Builder(1)
    x, cin = b.conv("x", 3, 32, 3, 2, act="relu6"), 32
    for t, c, n, s in ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                       (6, 160, 3, 2), (6, 320, 1, 1)):
        for i in range(n):
            hid, stride = cin * t, (s if i == 0 else 1)
            y = b.conv(x, cin, hid, 1, act="relu6") if t != 1 else x
            y = b.conv(y, hid, hid, 3, stride, groups=hid, act="relu6")
            y = b.conv(y, hid, c, 1, act=None)
            x = b.node("Add", [x, y]) if (stride == 1 and cin == c) else y
            cin = c
    x = b.conv(x, cin, 1280, 1, act="relu6")
    x = b.node("Flatten", [b.node("GlobalAveragePool", [x])])
    y = b.node("Gemm", [x, b.weight(1000, 1280), b.const(np.zeros(1000))], transB=1)
    return b.model((batch, 3, res, res), y, (batch, 1000)), (batch, 3, res, res)


def bert(layers: int = 4, seq: int = 128, hidden: int = 768, heads: int = 12, ff: int = 3072):
    """BERT-base-shaped encoder layers on hidden states (batch 1); GELU in its erf form."""
    b = _Builder(2)
    dh = hidden // heads

    def linear(x, i, o):
        return b.node("Add", [b.node("MatMul", [x, b.weight(i, o, fan_in=i)]), b.const(np.zeros(o))])

    def ln(x):
        return b.node("LayerNormalization", [x, b.const(np.ones(hidden)), b.const(np.zeros(hidden))], axis=-1)

    def heads_of(x):
        r = b.node("Reshape", [x, b.const_i64((1, seq, heads, dh))])
        return b.node("Transpose", [r], perm=[0, 2, 1, 3])

    def const_i64(v):
        nm = b.name("s")
        b.inits.append(numpy_helper.from_array(np.asarray(v, np.int64), nm))
        return nm

    b.const_i64 = const_i64
    x = "x"
    for _ in range(layers):
        q, k, v = (heads_of(linear(x, hidden, hidden)) for _ in range(3))
        kt = b.node("Transpose", [k], perm=[0, 1, 3, 2])
        s = b.node("Mul", [b.node("MatMul", [q, kt]), b.const(1.0 / np.sqrt(dh))])
        p = b.node("Softmax", [s], axis=-1)
        c = b.node("Transpose", [b.node("MatMul", [p, v])], perm=[0, 2, 1, 3])
        c = b.node("Reshape", [c, const_i64((1, seq, hidden))])
        x = ln(b.node("Add", [x, linear(c, hidden, hidden)]))
        h = linear(x, hidden, ff)
        g = b.node("Mul", [b.node("Mul", [h, b.const(0.5)]),
                           b.node("Add", [b.node("Erf", [b.node("Mul", [h, b.const(1 / np.sqrt(2))])]),
                                          b.const(1.0)])])
        x = ln(b.node("Add", [x, linear(g, ff, hidden)]))
    return b.model((1, seq, hidden), x, (1, seq, hidden)), (1, seq, hidden)


def quantized(model, x_shape, path: str, per_channel: bool = False, samples: int = 2) -> str:
    """Save ``model`` and its QDQ quantization (u8 activations, s8 weights) under ``path``; return it."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self):
            rng = np.random.default_rng(1)
            self.data = iter([{"x": rng.standard_normal(x_shape).astype(np.float32)} for _ in range(samples)])

        def get_next(self):
            return next(self.data, None)

    f = path + ".float.onnx"
    onnx.save(model, f)
    quantize_static(f, path, Reader(), quant_format=QuantFormat.QDQ, per_channel=per_channel,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    os.remove(f)
    return path
