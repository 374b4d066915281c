"""``export_onnx``: a (quantized) graph as an ONNX QDQ model that onnxruntime runs.

What is written
---------------
The graph is first run once (:func:`hwsim.sim.run`) on the given inputs, so that every scale the
simulation uses is known: activation scales calibrated from those inputs (or kept from the file),
weight scales calibrated on the pruned weights, synthetic weights for zoo models without any.
Then, per IR op, one standard ONNX node (opset 21; 23 when a float4 tensor is written):

- weights and biases with a format ONNX carries (int2/uint2 excepted: int4, uint4, int8, uint8,
  int16, uint16, int32, float8 e4m3fn / e5m2 / fnuz, float4 e2m1) become an initializer of codes
  read through ``DequantizeLinear`` (per tensor, per channel ``axis``, or per group ``block_size``),
  holding exactly the values the simulator uses (:func:`hwsim.sim.qspec.prepare_constant`);
  a linear weight (out, in) is written transposed, (in, out), as MatMul reads it;
- an int32 bias of a conv2d or linear is written as int32 codes read through DequantizeLinear at
  scale ``float32(s_x) * float32(s_w)`` (what onnxruntime's quantizer writes, and what its QDQ
  fusion into QGemm assumes: a6cc5f6); a linear is a
  ``Gemm`` (fused into QGemm by onnxruntime), between two Reshapes and QDQ pairs when its input
  has more than two dimensions;
- an activation with such a format and a scale is followed by ``QuantizeLinear -> DequantizeLinear``
  (graph inputs too); fp16 / bf16 activations by a ``Cast`` there and back;
- float tensors are written as float32; a batch norm as ``x * scale + shift`` (float32 constants).

Formats ONNX cannot carry (ternary, signed binary, VQ codebooks, MX / block formats, pow2, int2
weights...) are refused naming the tensor, or, with ``dequantize_unsupported=True``, written as
float32 dequantized values (the values the simulator uses) with a note. Generic ONNX nodes of an
imported model (:class:`hwsim.graph.ops_onnx.OnnxNode`: Resize, Pad, Where, control flow...) are
written back as imported, reading the exported values (a node whose op changed since the model's
opset is refused naming it); conv3d, conv_transpose and the KV-cache ops (Identity, Concat) have
writers too. Op kinds without an ONNX writer here (rotary, LSTM/GRU, dynamic quantize) are refused
naming the op. Explicit quantize / dequantize ops of an imported model are
written through the QDQ pair of the tensor that carries their spec (run-time scales refused).
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from hwsim import formats
from hwsim.errors import ConfigError, UnsupportedOpError
from hwsim.graph.ir import Graph, Tensor
from hwsim.graph.quant import QuantSpec
from hwsim.sim import qspec

#: hwsim format -> ONNX element type of codes ONNX QDQ can carry
ONNX_CODES = {"int8": TensorProto.INT8, "uint8": TensorProto.UINT8, "int16": TensorProto.INT16,
              "uint16": TensorProto.UINT16, "int32": TensorProto.INT32, "int4": TensorProto.INT4,
              "uint4": TensorProto.UINT4, "fp8_e4m3fn": TensorProto.FLOAT8E4M3FN,
              "fp8_e5m2": TensorProto.FLOAT8E5M2, "fp8_e4m3fnuz": TensorProto.FLOAT8E4M3FNUZ,
              "fp8_e5m2fnuz": TensorProto.FLOAT8E5M2FNUZ, "fp4_e2m1": TensorProto.FLOAT4E2M1}
_CASTS = {"fp16": TensorProto.FLOAT16, "bf16": TensorProto.BFLOAT16}
_UNARY = {"relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh", "sqrt": "Sqrt", "exp": "Exp", "log": "Log",
          "neg": "Neg", "abs": "Abs", "reciprocal": "Reciprocal", "erf": "Erf", "identity": "Identity"}
_BINARY = {"add": "Add", "sub": "Sub", "mul": "Mul", "div": "Div", "pow": "Pow", "max": "Max", "min": "Min"}
_REDUCE = {"mean": "ReduceMean", "sum": "ReduceSum", "max": "ReduceMax", "min": "ReduceMin"}


def onnx_format(spec: QuantSpec) -> int | None:
    """ONNX element type of the codes of ``spec``, or None when ONNX QDQ cannot carry it."""
    name = formats.get(spec.format).name
    return ONNX_CODES.get(name)


def export_onnx(graph: Graph, inputs: dict, seed: int = 0, calibration=None,
                dequantize_unsupported: bool = False) -> tuple[onnx.ModelProto, list[str]]:
    """Write ``graph`` (quantized as annotated) as an ONNX QDQ model.

    Parameters
    ----------
    graph : Graph
        Annotated graph (zoo or imported, after a quant config or plan).
    inputs : dict
        Inputs to calibrate missing activation scales on (boundary types, as for :func:`run`).
    seed : int
        Seed of synthetic weights (zoo models without weights) and stochastic parts.
    calibration : dict or list of dict, optional
        Calibration inputs instead of ``inputs`` (as :func:`hwsim.sim.run`).
    dequantize_unsupported : bool
        Write weights of formats ONNX cannot carry as float32 dequantized values (noted) instead
        of refusing.

    Returns
    -------
    (onnx.ModelProto, list of str)
        The model (checked with ``onnx.checker``) and notes on what was written.
    """
    from hwsim.sim import run

    result = run(graph, inputs, seed=seed, calibration=calibration, metrics=False)
    w = _Writer(result.graph, seed, dequantize_unsupported)
    for op in result.graph.ops():
        w.op(op)
    g = result.graph
    shapes = ", ".join(f"{n} {'x'.join(map(str, g.tensors[n].shape)) or 'scalar'}" for n in g.inputs)
    w.notes.append(f"written for fixed input shapes ({shapes}): every dimension is bound as simulated, so the "
                   "file runs at these shapes only; export again with other shapes for others")
    return w.model(), w.notes


class _Writer:
    def __init__(self, g: Graph, seed: int, dequantize_unsupported: bool):
        self.g, self.seed, self.deq = g, seed, dequantize_unsupported
        self.nodes: list = []
        self.inits: list = []
        self.read: dict[str, str] = {}
        self.notes: list[str] = []
        self.opset = 21
        self.readers = {n: [o for o in g.ops() if n in o.inputs] for n in g.tensors}
        self.written_nodes: set[str] = set()
        for name in g.inputs:
            self._activation(name)

    # ------------------------------------------------------------------ values
    def _init(self, name: str, array: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(array, name))
        return name

    def _node(self, op_type: str, ins: list[str], out: str, **attrs) -> str:
        self.nodes.append(helper.make_node(op_type, ins, [out], name=f"{out}.{op_type}", **attrs))
        return out

    def _qparams(self, name: str, spec: QuantSpec, shape: tuple[int, ...]) -> tuple[str, str, dict]:
        """Scale and zero-point initializers of ``spec`` for a tensor of ``shape``, and DQ attributes."""
        elem = onnx_format(spec)
        scale = qspec.scale_array(spec.scale)
        zp = np.zeros(scale.size, np.int64) if spec.zero_point is None else np.asarray(spec.zero_point, np.int64)
        attrs: dict = {}
        if spec.granularity == "tensor":
            scale, zp = scale.reshape(()), zp.reshape(())[()] * np.ones((), np.int64)
        elif spec.granularity == "channel":
            attrs["axis"] = spec.axis % len(shape)
        else:
            axis = spec.axis % len(shape)
            blocks = list(shape)
            blocks[axis] = -(-shape[axis] // spec.group_size)
            scale, zp = scale.reshape(blocks), np.broadcast_to(zp, (scale.size,)).reshape(blocks)
            attrs.update(axis=axis, block_size=spec.group_size)
        if elem == TensorProto.FLOAT4E2M1:
            self.opset = 23
        zp_dtype = helper.tensor_dtype_to_np_dtype(elem)
        s = self._init(f"{name}_scale", scale.astype(np.float32))
        z = self._init(f"{name}_zero_point", zp.astype(np.float64).astype(zp_dtype))
        return s, z, attrs

    def _activation(self, name: str) -> None:
        """Record what readers of activation ``name`` read: the tensor, or its QDQ / Cast pair."""
        t = self.g.tensors[name]
        self.read[name] = name
        if t.dtype not in ("float32", "float") or t.quant.format in ("fp32", "fp64"):
            return
        if t.quant.format in _CASTS:
            c = self._node("Cast", [name], f"{name}_cast", to=_CASTS[t.quant.format])
            self.read[name] = self._node("Cast", [c], f"{name}_uncast", to=TensorProto.FLOAT)
            return
        if onnx_format(t.quant) is None or t.quant.scale is None:
            raise UnsupportedOpError(f"activation '{name}' has format {t.quant.format}, which ONNX QuantizeLinear "
                                     "cannot carry; export needs int4/int8/int16 (signed or not), fp8 or fp16/bf16 "
                                     "activations")
        s, z, attrs = self._qparams(name, t.quant, t.shape)
        q = self._node("QuantizeLinear", [name, s, z], f"{name}_q", **attrs)
        self.read[name] = self._node("DequantizeLinear", [q, s, z], f"{name}_dq", **attrs)

    def _const(self, op, slot: int, name: str, transpose: bool = False) -> str:
        """A weight / bias / constant input as an initializer (codes + DequantizeLinear when quantized)."""
        key = f"{name}.T" if transpose else name
        if key in self.read:
            return self.read[key]
        t = self.g.tensors[name]
        pruning = op.pruning if op.is_compute and slot in type(op).weight_slots else None
        values, spec = qspec.prepare_constant(t, pruning, self.seed)
        if transpose:
            values, spec = values.T, _transposed(spec)
        shape = values.shape
        if qspec.is_passthrough(spec) or spec.scale is None:
            out = self._init(key, np.asarray(values, _np_dtype(t)))
        elif onnx_format(spec) is None or formats.get(spec.format).name in ("int16", "uint16") and t.role != "weight":
            out = self._unsupported(key, t, spec, values)
        else:
            codes = _codes(values, spec)
            s, z, attrs = self._qparams(key, spec, shape)
            data = helper.make_tensor(f"{key}_codes", onnx_format(spec), shape, _pack(codes, spec).ravel().tolist())
            self.inits.append(data)
            out = self._node("DequantizeLinear", [data.name, s, z], key, **attrs)
        self.read[key] = out
        return out

    def _unsupported(self, key: str, t: Tensor, spec: QuantSpec, values: np.ndarray) -> str:
        if not self.deq:
            raise UnsupportedOpError(f"tensor '{t.name}' has format {spec.format} ({spec.granularity}), which ONNX "
                                     "cannot carry as codes; choose an int4/int8/fp8 format for it, or export it as "
                                     "float32 dequantized values")
        self.notes.append(f"'{t.name}' ({spec.format}) written as float32 dequantized values: ONNX has no such type")
        return self._init(key, np.asarray(values, np.float32))

    def _in(self, op, slot: int) -> str:
        name = op.inputs[slot]
        t = self.g.tensors[name]
        if t.role in ("input", "activation", "kv_cache"):
            return self.read[name]
        return self._const(op, slot, name)

    # ------------------------------------------------------------------ ops
    def op(self, op) -> None:
        fn = getattr(self, f"_op_{op.op}", None)
        if fn is None:
            raise UnsupportedOpError(f"export: op '{op.name}' of kind {op.op} has no ONNX writer; models with "
                                     f"{op.op} ops cannot be exported yet")
        if getattr(op, "runtime_quant", ()):
            raise UnsupportedOpError(f"export: {op.op} '{op.name}' quantizes with scales / zero points given at run "
                                     f"time ({', '.join(op.runtime_quant)}); export needs them constant")
        out = op.outputs[0]
        fn(op, out)
        self._activation(out)

    def _op_conv2d(self, op, out):
        ins = [self._in(op, 0), self._const(op, 1, op.inputs[1])]
        if len(op.inputs) > 2:
            ins.append(self._bias(op))
        pt, pl, pb, pr = op.padding
        kh, kw = self.g.tensors[op.inputs[1]].shape[2:]
        self._node("Conv", ins, out, strides=list(op.stride), pads=[pt, pl, pb, pr], dilations=list(op.dilation),
                   group=op.groups, kernel_shape=[kh, kw])

    def _op_conv3d(self, op, out):
        ins = [self._in(op, 0), self._const(op, 1, op.inputs[1])] + ([self._bias(op)] if len(op.inputs) > 2 else [])
        self._node("Conv", ins, out, strides=list(op.stride), pads=list(op.padding), dilations=list(op.dilation),
                   group=op.groups, kernel_shape=list(self.g.tensors[op.inputs[1]].shape[2:]))

    def _op_conv_transpose(self, op, out):
        """ConvTranspose; an int32 bias through DequantizeLinear when its per-channel weight scales
        cover every output channel (groups 1), else as its own spec writes it."""
        ins = [self._in(op, 0), self._const(op, 1, op.inputs[1])]
        if len(op.inputs) > 2:
            ins.append(self._bias(op) if op.groups == 1 else self._const(op, 2, op.inputs[2]))
        self._node("ConvTranspose", ins, out, strides=list(op.stride), pads=list(op.padding),
                   output_padding=list(op.output_padding), dilations=list(op.dilation), group=op.groups,
                   kernel_shape=list(self.g.tensors[op.inputs[1]].shape[2:]))

    def _op_kv_cache_read(self, op, out):
        self._node("Identity", [self._in(op, 0)], out)

    def _op_kv_cache_append(self, op, out):
        self._node("Concat", [self._in(op, 0), self._in(op, 1)], out, axis=2)

    def _bias(self, op) -> str:
        """An int32 bias (conv2d, linear) at scale float32(s_x) * float32(s_w) (onnxruntime's quantizer), else
        as its constant."""
        name = op.inputs[2]
        t, sx, sw = self.g.tensors[name], self.g.tensors[op.inputs[0]].quant, self.g.tensors[op.inputs[1]].quant
        if t.quant.format != "int32" or sx.scale is None or sw.scale is None or sw.granularity == "group":
            return self._const(op, 2, name)
        s = (np.float32(sx.scale[0]) * qspec.scale_array(sw.scale).astype(np.float32)).astype(np.float32)
        s = np.broadcast_to(s, t.shape)
        codes = np.clip(np.rint(qspec.const_real(t) / s.astype(np.float64)), -2**31, 2**31 - 1).astype(np.int32)
        sc = self._init(f"{name}_scale", s.astype(np.float32))
        zp = self._init(f"{name}_zero_point", np.zeros(t.shape, np.int32))
        return self._node("DequantizeLinear", [self._init(f"{name}_codes", codes), sc, zp], name, axis=0)

    def _op_linear(self, op, out):
        """2-D input: ``Gemm(x, W^T, bias)`` with the int32 bias read through DequantizeLinear at
        ``float32(s_x) * float32(s_w)``, as onnxruntime's quantizer writes a Gemm (onnxruntime
        fuses it into QGemm, bias added to the int32 sums). More dimensions: the same Gemm between
        two Reshapes, each side of it through its own QDQ pair of the tensor's spec (the values do
        not change), so onnxruntime fuses it the same way (ONNX Gemm is 2-D only)."""
        x, w = self._in(op, 0), self._const(op, 1, op.inputs[1], transpose=True)
        bias = [self._bias(op)] if len(op.inputs) > 2 else []
        shape = self.g.tensors[op.inputs[0]].shape
        if len(shape) == 2:
            self._node("Gemm", [x, w] + bias, out)
            return
        x2 = self._node("Reshape", [x, self._init(f"{out}.shape2d", np.asarray([-1, shape[-1]], np.int64))],
                        f"{out}.in2d")
        y2 = self._node("Gemm", [self._qdq(x2, op.inputs[0]), w] + bias, f"{out}.gemm")
        out_shape = self._init(f"{out}.shape", np.asarray(self.g.tensors[out].shape, np.int64))
        self._node("Reshape", [self._qdq(y2, out), out_shape], out)

    def _qdq(self, name: str, like: str) -> str:
        """``name`` through a QuantizeLinear -> DequantizeLinear pair with the per-tensor spec of
        tensor ``like`` (the same values: a reshape of it), so that onnxruntime sees the QDQ pairs
        of its Gemm selector next to the Gemm; ``name`` itself otherwise."""
        spec = self.g.tensors[like].quant
        if onnx_format(spec) is None or spec.scale is None or spec.granularity != "tensor":
            return name
        s, z, attrs = self._qparams(name, spec, ())
        return self._node("DequantizeLinear", [self._node("QuantizeLinear", [name, s, z], f"{name}_q", **attrs), s, z],
                          f"{name}_dq", **attrs)

    def _op_matmul(self, op, out):
        self._node("MatMul", [self._in(op, 0), self._in(op, 1)], out)

    def _op_binary(self, op, out):
        self._node(_BINARY[op.fn], [self._in(op, 0), self._in(op, 1)], out)

    def _op_unary(self, op, out):
        x = self._in(op, 0)
        if op.fn in _UNARY:
            self._node(_UNARY[op.fn], [x], out)
        elif op.fn in ("relu6", "clip"):
            lo, hi = (0.0, 6.0) if op.fn == "relu6" else (op.lo, op.hi)
            self._node("Clip", [x, self._scalar(out, "lo", lo), self._scalar(out, "hi", hi)], out)
        elif op.fn == "gelu":
            self._node("Gelu", [x], out)
        elif op.fn == "gelu_tanh":
            self._node("Gelu", [x], out, approximate="tanh")
        elif op.fn == "hardswish":
            self._node("HardSwish", [x], out)
        elif op.fn == "hardsigmoid":
            self._node("HardSigmoid", [x], out, alpha=1.0 / 6.0, beta=0.5)
        elif op.fn == "silu":
            self._node("Mul", [x, self._node("Sigmoid", [x], f"{out}.sigmoid")], out)
        elif op.fn == "rsqrt":
            self._node("Reciprocal", [self._node("Sqrt", [x], f"{out}.sqrt")], out)
        else:
            raise UnsupportedOpError(f"export: unary '{op.name}' fn {op.fn} has no ONNX writer")

    def _scalar(self, out: str, what: str, v) -> str:
        return "" if v is None else self._init(f"{out}.{what}", np.asarray(v, np.float32))

    def _op_batchnorm(self, op, out):
        """As ``x * scale + shift`` with float32 constants (two correctly rounded float32 ops, which
        any runtime computes alike; a BatchNormalization kernel has its own float32 order)."""
        gamma, beta, mean, var = (qspec.const_real(self.g.tensors[op.inputs[i]]) for i in range(1, 5))
        scale = (gamma / np.sqrt(var + op.eps)).astype(np.float32)
        shift = (beta - mean * scale.astype(np.float64)).astype(np.float32)
        shape = (-1,) + (1,) * (len(self.g.tensors[out].shape) - 2)
        m = self._node("Mul", [self._in(op, 0), self._init(f"{out}.scale", scale.reshape(shape))], f"{out}.mul")
        self._node("Add", [m, self._init(f"{out}.shift", shift.reshape(shape))], out)

    def _op_softmax(self, op, out):
        self._node("Softmax", [self._in(op, 0)], out, axis=op.axis)

    def _op_layernorm(self, op, out):
        ins = [self._in(op, i) for i in range(len(op.inputs))]
        if op.rms:
            self._node("RMSNormalization", ins, out, epsilon=op.eps, axis=-1)
            self.opset = max(self.opset, 23)
        else:
            self._node("LayerNormalization", ins, out, epsilon=op.eps, axis=-1)

    def _op_pool(self, op, out):
        pt, pl, pb, pr = op.padding
        kw = dict(kernel_shape=list(op.kernel), strides=list(op.stride), pads=[pt, pl, pb, pr],
                  ceil_mode=int(op.ceil_mode))
        if op.kind == "avg":
            kw["count_include_pad"] = int(op.count_include_pad)
        self._node("MaxPool" if op.kind == "max" else "AveragePool", [self._in(op, 0)], out, **kw)

    def _op_global_avgpool(self, op, out):
        self._node("GlobalAveragePool", [self._in(op, 0)], out)

    def _op_reduce(self, op, out):
        axes = self._init(f"{out}.axes", np.asarray(op.axes, np.int64))
        self._node(_REDUCE[op.fn], [self._in(op, 0), axes], out, keepdims=int(op.keepdims))

    def _op_embedding(self, op, out):
        self._node("Gather", [self._const(op, 1, op.inputs[1]), self._in(op, 0)], out, axis=0)

    def _op_gather(self, op, out):
        self._node("Gather", [self._in(op, 0), self._in(op, 1)], out, axis=op.axis)

    def _op_concat(self, op, out):
        self._node("Concat", [self._in(op, i) for i in range(len(op.inputs))], out, axis=op.axis)

    def _op_reshape(self, op, out):
        shape = self._init(f"{out}.shape", np.asarray(self.g.tensors[out].shape, np.int64))
        self._node("Reshape", [self._in(op, 0), shape], out)

    _op_flatten = _op_squeeze = _op_unsqueeze = _op_reshape

    def _op_quantize(self, op, out):
        """The output tensor carries the spec: its QuantizeLinear -> DequantizeLinear pair is written
        after it (:meth:`_activation`), so in the real-value view the op itself is an Identity."""
        if len(op.inputs) > 1:
            raise UnsupportedOpError(f"export: '{op.name}' quantizes with run-time scales; export needs them constant")
        self._node("Identity", [self._in(op, 0)], out)

    def _op_dequantize(self, op, out):
        """The input carries the spec (its QDQ pair, or codes + DequantizeLinear for a constant)."""
        self._op_quantize(op, out)

    def _op_cast(self, op, out):
        to = self.g.tensors[out].dtype
        if to in ("float32", "float"):
            self._node("Identity", [self._in(op, 0)], out)
        elif to in ("float16", "bfloat16"):
            c = self._node("Cast", [self._in(op, 0)], f"{out}.cast", to=_elem(to))
            self._node("Cast", [c], out, to=TensorProto.FLOAT)
        elif np.dtype(to).kind in "iub":
            self._node("Cast", [self._in(op, 0)], out, to=_elem(to))
        else:
            raise UnsupportedOpError(f"export: cast '{op.name}' to {to} has no ONNX writer")

    def _op_onnx(self, op, out):
        """A generic ONNX node (:class:`hwsim.graph.ops_onnx.OnnxNode`) written back as it was
        imported, reading the exported values (a quantized input through its QDQ pair). A node
        with several used outputs is one IR op per output: the node is written once, at the first."""
        from hwsim.graph.onnx_generic import decode_node

        if op.node_b64 in self.written_nodes:
            return
        self.written_nodes.add(op.node_b64)
        node = decode_node(op.node_b64)
        _check_opset(op, node, self.opset)
        read = {n: self._in(op, i) for i, n in enumerate(op.names)}
        node.input[:] = [read.get(n, n) if n else n for n in node.input]
        for a in node.attribute:  # If / Loop / Scan bodies read outer values by name
            for sub in ([a.g] if a.type == onnx.AttributeProto.GRAPH else list(a.graphs)):
                _rename_outer(sub, read)
        node.name = node.name or f"{out}.{node.op_type}"
        self.nodes.append(node)

    def _op_transpose(self, op, out):
        self._node("Transpose", [self._in(op, 0)], out, perm=list(op.perm))

    def _op_slice(self, op, out):
        i = lambda what, v: self._init(f"{out}.{what}", np.asarray(v, np.int64))  # noqa: E731
        ins = [self._in(op, 0), i("starts", op.starts), i("ends", op.ends), i("axes", op.axes)]
        if op.steps:
            ins.append(i("steps", op.steps))
        self._node("Slice", ins, out)

    def _rename(self, old: str, new: str) -> None:
        """Every node input and output called ``old`` is called ``new``."""
        for node in self.nodes:
            for seq in (node.input, node.output):
                for k, name in enumerate(seq):
                    if name == old:
                        seq[k] = new

    # ------------------------------------------------------------------ model
    def model(self) -> onnx.ModelProto:
        g = self.g
        ins = [helper.make_tensor_value_info(n, _elem(g.tensors[n].dtype), g.tensors[n].shape) for n in g.inputs]
        outs = []
        for n in g.outputs:
            if self.read[n] != n:  # the graph output is what readers see (after its QDQ pair), under its name
                self._rename(n, f"{n}.pre")
                self._node("Identity", [self.read[n]], n)
            outs.append(helper.make_tensor_value_info(n, TensorProto.FLOAT if g.tensors[n].dtype.startswith("float")
                                                      else _elem(g.tensors[n].dtype), g.tensors[n].shape))
        graph = helper.make_graph(self.nodes, g.name, ins, outs, self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", self.opset)],
                                  producer_name="hwsim export")
        model.ir_version = 10
        try:
            onnx.checker.check_model(model, full_check=True)
        except Exception as exc:  # a writer bug, not a user error: say what the checker found
            raise ConfigError(f"export produced a model onnx.checker rejects ({type(exc).__name__}: {exc})") from None
        return model


def _check_opset(op, node: onnx.NodeProto, opset: int) -> None:
    """Refuse a generic node whose op changed between its model's opset and the one written."""
    from onnx import defs

    try:
        then, now = (defs.get_schema(node.op_type, v).since_version for v in (op.opset, opset))
    except Exception:  # noqa: BLE001 - onnx raises its own SchemaError
        raise UnsupportedOpError(f"export: node '{op.name}' ({node.op_type}) has no standard ONNX schema at "
                                 f"opset {opset}") from None
    if then != now:
        raise UnsupportedOpError(f"export: node '{op.name}' is a {node.op_type} of opset {op.opset}, whose "
                                 f"definition changed at opset {now}; the export is written at opset {opset}. "
                                 f"Convert the model to opset {opset} first (onnx.version_converter)")


def _rename_outer(graph: onnx.GraphProto, read: dict[str, str]) -> None:
    """Point a subgraph's reads of outer values at the names the export gives them (in place)."""
    local = {i.name for i in graph.input} | {t.name for t in graph.initializer} | \
        {o for n in graph.node for o in n.output}
    inner = {k: v for k, v in read.items() if k not in local}
    for n in graph.node:
        n.input[:] = [inner.get(i, i) for i in n.input]
        for a in n.attribute:
            for sub in ([a.g] if a.type == onnx.AttributeProto.GRAPH else list(a.graphs)):
                _rename_outer(sub, inner)


def _transposed(spec: QuantSpec) -> QuantSpec:
    if spec.granularity == "tensor" or spec.axis is None:
        return spec
    return spec.model_copy(update={"axis": 1 - spec.axis % 2})


def _codes(values: np.ndarray, spec: QuantSpec) -> np.ndarray:
    if formats.get(spec.format).integer_codes:
        return qspec.codes(values, spec)
    return qspec.unscaled(values, spec)


def _pack(codes: np.ndarray, spec: QuantSpec) -> np.ndarray:
    """Codes in the form ``helper.make_tensor`` takes for the ONNX type (float8/float4: float values)."""
    if formats.get(spec.format).integer_codes:
        return np.asarray(codes, np.int64)
    return np.asarray(codes, np.float32)


def _np_dtype(t: Tensor):
    return np.float32 if t.data is None or np.asarray(t.data).dtype.kind == "f" else np.asarray(t.data).dtype


def _elem(dtype: str) -> int:
    return helper.np_dtype_to_tensor_dtype(np.dtype({"float": "float32"}.get(dtype, dtype)))
