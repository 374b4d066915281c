"""movement_nodes and quantize_fusion: what an interpreting runtime (onnxruntime) runs as nodes of its own."""

import pytest

from hwsim.cost.estimate import estimate
from hwsim.targets import load_target
from hwsim.targets.schema import Target

SHAPES = {"batch": 1, "sequence": 64}


def _target(**compute) -> Target:
    d = load_target("cortex-a78").model_dump()
    d["compute"].update(compute)
    d["layer_overhead_s"] = 5e-6
    return Target.model_validate(d)


def _rows(model, **compute):
    return {r.name: r for r in estimate(model, _target(**compute), shapes=SHAPES).layers}


def test_movement_nodes_pay_the_overhead_and_copies_move_their_bytes():
    plain, nodes = _rows("tests/data/tiny_bert.onnx"), _rows("tests/data/tiny_bert.onnx", movement_nodes=True)
    added = {n: r for n, r in nodes.items() if n not in plain}
    assert {r.op for r in added.values()} == {"reshape", "transpose", "slice"}
    for r in added.values():
        assert r.latency_s >= 5e-6
        moved = sum(r.bytes.values())
        assert (moved > 0) == (r.op != "reshape")  # a reshape re-labels its buffer; the others copy
    for n in plain:  # a biased linear on 3-D input runs as Reshape -> Gemm -> Reshape: two more nodes
        extra = 2 * 5e-6 if plain[n].op == "linear" else 0.0
        assert nodes[n].latency_s == pytest.approx(plain[n].latency_s + extra, rel=1e-9)


def test_quantize_fusion_runs_dynamic_quantization_and_rescale_inside_the_integer_layer():
    plain = _rows("tests/data/tiny_bert_qdynamic.onnx")
    fused = _rows("tests/data/tiny_bert_qdynamic.onnx", quantize_fusion=True)
    gone = {plain[n].op for n in set(plain) - set(fused)}
    assert gone == {"dynamic_quantize", "cast", "binary"}
    # every linear survives with the same cost; the residual adds and the GELU arithmetic stay
    assert {n for n, r in plain.items() if r.op == "linear"} <= set(fused)
    assert all(fused[n].latency_s == pytest.approx(plain[n].latency_s) for n in fused)
    assert sum(r.op == "binary" for r in fused.values()) == 15


def test_quantize_fusion_leaves_float_models_alone():
    assert _rows("tests/data/tiny_bert.onnx", quantize_fusion=True).keys() == _rows("tests/data/tiny_bert.onnx").keys()


def test_qdq_nodes_price_the_conversions_around_float_ops():
    """tiny_bert_qstatic (QDQ, every activation uint8): layer norms, divisions and erf compute in float, so
    each pays a dequantize node per input and a quantize node for its output; adds, multiplies and
    softmax have integer versions and run on the codes."""
    plain = _rows("tests/data/tiny_bert_qstatic.onnx")
    qdq = _rows("tests/data/tiny_bert_qstatic.onnx", qdq_nodes=True)
    assert plain.keys() == qdq.keys()
    grew = {n for n in plain if qdq[n].latency_s > plain[n].latency_s * (1 + 1e-9)}
    assert {qdq[n].op for n in grew} == {"layernorm", "binary", "unary"}
    assert all(qdq[n].op != "binary" or n.endswith("Div") or "Div_" in n for n in grew)
    for n in grew:  # at least one node's overhead each, and the conversion traffic in the bytes
        assert qdq[n].latency_s - plain[n].latency_s >= 5e-6
        assert sum(qdq[n].bytes.values()) > sum(plain[n].bytes.values())
    assert "qdq_nodes" in qdq[next(iter(grew))].note


def test_qdq_nodes_leave_float_models_alone():
    fp32 = {"weights": "fp32", "activations": "fp32"}
    t = _target(qdq_nodes=True)
    assert estimate("tests/data/tiny_bert.onnx", t, shapes=SHAPES, **fp32).layers == estimate(
        "tests/data/tiny_bert.onnx", _target(), shapes=SHAPES, **fp32).layers
