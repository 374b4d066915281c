"""Elementwise ops on 8-bit codes by table (:mod:`hwsim.sim.codetable`) give the codes of the
direct run, element for element, with the same per-layer metrics."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from hwsim.graph.onnx import load_onnx
from hwsim.sim import codetable, run

SHAPE = (2, 256, 256)  # 131,072 elements: two coded inputs (65,536 pairs) take the table too


def _chain(path, dt, seed):
    """x -> Mul 1.5 -> Erf -> Mul 0.5 -> Mul by its input -> Tanh -> Add 0.25 -> Sigmoid -> Sqrt -> Log
    -> Sub -> y, each tensor through QuantizeLinear -> DequantizeLinear with seeded scales and
    zero points (Sqrt and Log meet negative and zero codes in their table: NaN / -inf entries)."""
    rng = np.random.default_rng(seed)
    info = np.iinfo(dt)
    nodes, inits = [], []

    def qdq(src):
        name = f"q{len(nodes)}"
        inits.extend([numpy_helper.from_array(np.array(rng.uniform(0.004, 0.03), np.float32), name + "_s"),
                      numpy_helper.from_array(np.array(rng.integers(info.min // 2, info.max // 2 + 1), dt), name + "_z")])
        nodes.extend([helper.make_node("QuantizeLinear", [src, name + "_s", name + "_z"], [name + "_q"]),
                      helper.make_node("DequantizeLinear", [name + "_q", name + "_s", name + "_z"], [name + "_d"])])
        return name + "_d"

    def op(kind, *ins):
        out = f"o{len(nodes)}"
        nodes.append(helper.make_node(kind, list(ins), [out]))
        return qdq(out)

    def const(v):
        name = f"c{len(inits)}"
        inits.append(numpy_helper.from_array(np.array(v, np.float32), name))
        return name

    a = op("Erf", op("Mul", qdq("x"), const(1.5)))
    b = op("Mul", a, const(0.5))
    c = op("Mul", b, a)
    d = op("Tanh", c)
    e = op("Add", d, const(0.25))
    f = op("Sigmoid", e)
    g = op("Sqrt", f)
    h = op("Log", g)
    nodes.append(helper.make_node("Sub", [h, g], ["y"]))
    graph = helper.make_graph(nodes, "chain", [helper.make_tensor_value_info("x", TensorProto.FLOAT, SHAPE)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, SHAPE)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])
    model.ir_version = 9
    onnx.save(model, path)
    return path


@pytest.mark.parametrize("dt,seed,requant", [(np.uint8, 0, "onnxruntime"), (np.int8, 1, "onnxruntime"),
                                             (np.uint8, 2, "exact")])
def test_table_equals_direct_run(tmp_path, monkeypatch, dt, seed, requant):
    g = load_onnx(str(_chain(tmp_path / "m.onnx", dt, seed)), {})
    x = {"x": (np.random.default_rng(seed).standard_normal(SHAPE) * 1.5).astype(np.float32)}
    lookup, used = codetable.lookup, []

    def counted(ctx, op, xs, values):
        y = lookup(ctx, op, xs, values)
        if not ctx.reference:
            used.append((op.fn, y is not None))
        return y

    monkeypatch.setattr(codetable, "lookup", counted)
    table = run(g, x, requant=requant)
    # the graph input is held as codes too (runner._round_input); Sqrt's and Log's tables hold
    # NaN: they run directly
    assert used == [("mul", True), ("erf", True), ("mul", True), ("mul", True), ("tanh", True), ("add", True),
                    ("sigmoid", True), ("sqrt", False), ("log", False), ("sub", False)]
    monkeypatch.setattr(codetable, "lookup", lambda *a: None)
    direct = run(g, x, requant=requant)
    np.testing.assert_array_equal(table.outputs["y"], direct.outputs["y"])
    assert [(e.name, e.sqnr_db, e.mse) for e in table.layers] == [(e.name, e.sqnr_db, e.mse) for e in direct.layers]
    assert table.notes == direct.notes


@pytest.mark.parametrize("gelu_input", ["int16", "int8", "uint8"])
def test_int16_table_equals_direct_run(monkeypatch, gelu_input):
    """lookup16: MiniLM-L6 (sequence 128, one sample) with int16 activations, whose GELUs read the
    int16 codes of their linear layer, or 8-bit codes where that layer's output is set to an 8-bit
    format (as a solve's plan with int16 defaults and 8-bit layers has it): the table run gives the
    direct run's outputs and per-layer metrics exactly, and the table was taken."""
    from hwsim.graph.annotate import quantize_graph
    from hwsim.graph.ir import QuantSpec
    from hwsim.graph.weights import synthesize_weights
    from hwsim.graph.zoo import load_model
    from hwsim.solve.data import synthetic
    from hwsim.targets import load_target

    g = quantize_graph(synthesize_weights(load_model("minilm-l6", {"batch": 1, "sequence": 128}), 0), "int8", "int16",
                       target_scope=load_target("int8-npu").activation_scope)  # as solve prices its plans
    if gelu_input != "int16":
        for op in g.ops():
            if op.op == "unary" and op.fn == "gelu":
                g.set_quant(op.inputs[0], QuantSpec(format=gelu_input))
    inputs = synthetic(g, 1, 0).inputs
    taken = []
    table = codetable.lookup16
    monkeypatch.setattr(codetable, "lookup16", lambda ctx, op, xs, values: taken.append(
        (op.fn, ctx.reference, table(ctx, op, xs, values))) or taken[-1][2])
    with_table = run(g, inputs, requant="exact")
    gelus = [y for fn, reference, y in taken if fn == "gelu" and not reference]
    assert len(gelus) == 6 and all(y is not None for y in gelus)  # every GELU by table
    monkeypatch.setattr(codetable, "lookup16", lambda *a: None)
    direct = run(g, inputs, requant="exact", reference=with_table.reference)
    for n, v in direct.output_values.items():
        np.testing.assert_array_equal(with_table.output_values[n], v)
    assert [(e.name, e.mse) for e in with_table.layers] == [(e.name, e.mse) for e in direct.layers]
