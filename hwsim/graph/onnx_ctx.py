"""The importer's state while it walks an ONNX graph: values, the IR graph under construction,
constant folding and the placement of constants as IR tensors (see :mod:`hwsim.graph.onnx`)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import onnx
from onnx import helper

from hwsim.errors import UnsupportedOpError
from hwsim.graph import ops as O
from hwsim.graph.ir import Graph, Tensor
from hwsim.graph.onnx_values import (Act, Codes, Const, QAct, QConst, array_dtype, codes_array,
                                     dtype_name, format_of)
from hwsim.graph.quant import FP32, QuantSpec
from hwsim.kernels.packcache import frozen

Value = Const | Act | QAct | QConst | Codes


class Importer:
    """Walk state: ONNX name -> value, the IR graph, and helpers the op converters call."""

    def __init__(self, model: onnx.ModelProto, name: str):
        self.g = Graph(name)
        self.model = model
        self.values: dict[str, Value] = {}
        self.elem_types: dict[str, int] = {}
        #: the inputs the model will run on, when given (shapes of value-dependent outputs)
        self.run_values: dict = {}
        self.consumers: dict[str, list[onnx.NodeProto]] = {}
        self._placed: dict[tuple, str] = {}
        self._materialized: dict[str, str] = {}
        self._op_names: set[str] = set()
        #: first outputs of nodes already folded into an earlier IR op (MatMul + bias Add)
        self.fused: set[str] = set()
        #: True while the standard nodes that define a com.microsoft QLinear op are imported
        #: (:func:`hwsim.graph.onnx_qlinear._expand`); outputs of the QuantizeLinear nodes made then
        self.expanding = False
        self.expanded_q: set[str] = set()
        self.graph_outputs = {o.name for o in model.graph.output}
        self.add_readers(model.graph.node, [])

    def add_readers(self, nodes, outputs: list[str]) -> None:
        """Record who reads what (subgraphs' reads of outer values count as reads by their node);
        ``outputs`` are read from outside (graph outputs, an inlined branch's outputs)."""
        from hwsim.graph.onnx_generic import outer_names

        for node in nodes:
            for t in dict.fromkeys(list(node.input) + outer_names(node)):
                self.consumers.setdefault(t, []).append(node)
        self.graph_outputs.update(outputs)

    # ------------------------------------------------------------------ naming and lookup
    def op_name(self, node: onnx.NodeProto, suffix: str = "") -> str:
        base = (node.name or f"{node.op_type}_{node.output[0]}") + suffix
        name, k = base, 1
        while name in self._op_names:
            name, k = f"{base}_{k}", k + 1
        self._op_names.add(name)
        return name

    def fail(self, node: onnx.NodeProto, msg: str) -> UnsupportedOpError:
        """The error for a node hwsim cannot import; ``.item`` is the part the import lists."""
        item = f"{node.op_type} (node '{node.name or node.output[0]}'): {msg}"
        exc = UnsupportedOpError(f"unsupported ONNX op: {item}")
        exc.item = item  # type: ignore[attr-defined]
        return exc

    def input(self, node: onnx.NodeProto, i: int) -> str | None:
        return node.input[i] if i < len(node.input) and node.input[i] else None

    def const(self, node: onnx.NodeProto, i: int, what: str, default=None) -> np.ndarray | None:
        """Input ``i`` as a numpy array; it must be known at import time (or absent -> default)."""
        name = self.input(node, i)
        if name is None:
            return default
        v = self.values[name]
        if isinstance(v, Codes):
            return _codes_value(v)
        if not isinstance(v, Const):
            raise self.fail(node, f"{what} (input {i}, '{name}') must be a constant")
        return v.value

    def is_const(self, name: str | None) -> bool:
        return name is not None and isinstance(self.values.get(name), (Const, Codes))

    def shape(self, name: str) -> tuple[int, ...]:
        v = self.values[name]
        if isinstance(v, Act):
            return self.g.tensors[v.name].shape
        if isinstance(v, QAct):
            return self.g.tensors[self.act(v.src)].shape
        if isinstance(v, (QConst, Codes)):
            return tuple(v.codes.shape)
        return tuple(v.value.shape)

    # ------------------------------------------------------------------ IR building
    def add(self, op: O.OpBase, dtype: str | None = None, quant: QuantSpec | None = None) -> str:
        """Add an IR op whose single output is an ONNX tensor; record it as an activation."""
        self.g.add_op(op)
        out = op.outputs[0]
        t = self.g.tensors[out]
        # an element type onnx inference could not give (downstream of a custom-domain op) is the
        # first input's: the ops added without an explicit dtype keep their input's type
        dt = dtype or (dtype_name(self.elem_types[out]) if out in self.elem_types
                       else self.g.tensors[op.inputs[0]].dtype if op.inputs else t.dtype)
        self.g.tensors[out] = replace(t, dtype=dt, quant=quant or t.quant)
        self.values[out] = Act(out)
        return out

    def act(self, name: str) -> str:
        """The IR tensor holding ONNX tensor ``name`` at run time, materializing constants."""
        if name in self._materialized:
            return self._materialized[name]
        v = self.values[name]
        if isinstance(v, Act):
            return v.name
        if isinstance(v, Const):
            big_float = v.param and v.value.dtype.kind == "f" and v.value.size > 1
            out = self.place(name, v, "weight" if big_float else "const")
        elif isinstance(v, Codes):
            out = self.place(name, Const(_codes_value(v)), "const")
        elif isinstance(v, QAct):
            src = self.act(v.src)
            op = O.Quantize(name=self._unique(f"{v.out}.quantize"), inputs=(src,), outputs=(v.out,),
                            saturate=v.saturate)
            self.g.add_op(op)
            self.g.tensors[v.out] = replace(self.g.tensors[v.out], dtype=v.dtype, quant=v.spec)
            out = v.out
        else:
            codes = self.place(v.src, v, "weight")
            op = O.Dequantize(name=self._unique(f"{name}.dequantize"), inputs=(codes,), outputs=(name,))
            self.g.add_op(op)
            out = name
        self._materialized[name] = out
        return out

    def _unique(self, base: str) -> str:
        name, k = base, 1
        while name in self._op_names or name in self.g.nx:
            name, k = f"{base}_{k}", k + 1
        self._op_names.add(name)
        return name

    def place(self, name: str, v: Value, role: str, perm: tuple[int, ...] | None = None,
              where: str = "") -> str:
        """A constant (float, integer codes or quantized) as an IR tensor of ``role``; cached."""
        key = (name, role, perm)
        if key in self._placed:
            return self._placed[key]
        if isinstance(v, Codes):
            v = QConst(v.codes, v.dtype, v.src, np.ones((1,) * v.codes.ndim, np.float32),
                       None if v.zero_point is None else np.asarray(v.zero_point))
        if isinstance(v, QConst):
            if perm is not None:
                v = v.transpose(perm)
            data, dtype, quant = codes_array(v.codes), v.dtype, v.spec(where or name)
            if data.dtype.kind not in "iu":  # float8/float4 codes: the IR stores real values
                data = v.real()
        else:
            data = v.value if perm is None else v.value.transpose(perm)
            dtype = array_dtype(data)
            if data.dtype.kind == "f" or dtype == "bfloat16":
                data = data.astype(np.float32, copy=False)
            quant = FP32 if data.dtype.kind == "f" else QuantSpec(format=format_of(dtype) or "fp32")
        tname = name if name not in self.g.tensors else self._fresh_tensor(name)
        # frozen (read-only over immutable bytes, C order): packcache finds a weight's packed forms by
        # identity instead of comparing its bytes on every run (hwsim.kernels.packcache)
        self.g.add_tensor(Tensor(tname, tuple(int(d) for d in data.shape), role, quant, frozen(data),
                                 dtype))  # type: ignore[arg-type]
        self._placed[key] = tname
        return tname

    def _fresh_tensor(self, base: str) -> str:
        k = 1
        while f"{base}.{k}" in self.g.tensors:
            k += 1
        return f"{base}.{k}"

    def annotate(self, node: onnx.NodeProto, tensor: str, spec: QuantSpec) -> None:
        """Put a QuantSpec on an activation; a different spec already there is an error."""
        old = self.g.tensors[tensor].quant
        bare = old.scale is None and old.format == spec.format  # placed constant: format only
        if old != FP32 and old != spec and not bare:
            raise self.fail(node, f"tensor '{tensor}' is quantized twice with different parameters "
                                  f"({old.format} scale {old.scale} and {spec.format} scale {spec.scale})")
        self.g.set_quant(tensor, spec)

    # ------------------------------------------------------------------ folding
    def fold(self, node: onnx.NodeProto) -> None:
        """Evaluate a node whose inputs are all constants with onnx's reference evaluator."""
        from onnx.reference import ReferenceEvaluator

        from hwsim.graph.onnx_generic import outer_names

        feeds = {n: self.const(node, i, "input") for i, n in enumerate(node.input) if n}
        for n in outer_names(node):  # values the node's subgraphs read from this scope
            v = self.values[n]
            feeds[n] = v.value if isinstance(v, Const) else _codes_value(v)
        ins = [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(a.dtype), a.shape)
               for n, a in feeds.items()]
        outs = [helper.make_tensor_value_info(n, 0, None) for n in node.output if n]
        model = helper.make_model(helper.make_graph([node], "fold", ins, outs),
                                  opset_imports=list(self.model.opset_import), ir_version=self.model.ir_version)
        try:
            results = ReferenceEvaluator(model).run(None, feeds)
        except Exception as exc:  # the oracle rejects the node: report it as unsupported
            raise self.fail(node, f"cannot evaluate it on constant inputs ({type(exc).__name__}: {exc})") from None
        for n, r in zip([n for n in node.output if n], results):
            self.values[n] = Const(np.asarray(r))


def _codes_value(v: Codes) -> np.ndarray:
    out = codes_array(v.codes).astype(np.float32)
    return out if v.zero_point is None else out - v.zero_point
