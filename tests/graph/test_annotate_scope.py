"""Quantization scope (issue 10 item 6): which activations the default activation format quantizes."""

import pytest

from hwsim.cli import main
from hwsim.errors import ConfigError
from hwsim.graph.annotate import QuantConfig, quantize_graph
from hwsim.graph.zoo import load_model


@pytest.fixture(scope="module")
def minilm():
    return load_model("minilm-l6", {"sequence": 8})


def _fmt(g, op_kind):
    return {g.tensors[t].quant.format for op in g.ops() if op.op == op_kind for t in op.inputs
            if g.tensors[t].role in ("input", "activation")}


def test_all_quantizes_every_activation(minilm):
    g = quantize_graph(minilm, "int8", "int8")
    assert _fmt(g, "softmax") == {"int8"} and _fmt(g, "layernorm") == {"int8"}


def test_mac_inputs_leaves_softmax_and_norms_float(minilm):
    g = quantize_graph(minilm, "int8", "int8", scope="mac_inputs")
    assert _fmt(g, "linear") == {"int8"} and _fmt(g, "matmul") == {"int8"}
    assert _fmt(g, "softmax") == {"fp32"} and _fmt(g, "layernorm") == {"fp32"}
    for op in g.ops():  # every activation a MAC op reads is int8, every other tensor fp32
        mac = {t for o in g.ops() if o.is_compute for t in o.inputs}
        for t in op.outputs:
            assert (g.tensors[t].quant.format == "int8") == (t in mac)


def test_op_kind_list(minilm):
    g = quantize_graph(minilm, None, "int8", scope="softmax,matmul")
    assert _fmt(g, "softmax") == {"int8"} and _fmt(g, "matmul") == {"int8"}
    assert "fp32" in _fmt(g, "linear")


def test_scope_in_config_file(tmp_path, minilm):
    (tmp_path / "q.yaml").write_text("schema_version: 1\nscope: mac_inputs\ndefaults: {weights: int8, activations: int8}\n")
    g = quantize_graph(minilm, config=tmp_path / "q.yaml")
    assert _fmt(g, "softmax") == {"fp32"}
    assert QuantConfig.load(tmp_path / "q.yaml").scope == "mac_inputs"
    g = quantize_graph(minilm, config=tmp_path / "q.yaml", scope="all")  # --scope wins over the file
    assert _fmt(g, "softmax") == {"int8"}


def test_unknown_scope_is_a_clear_error(minilm, tmp_path, capsys):
    with pytest.raises(ConfigError, match="unknown: softmx"):
        quantize_graph(minilm, None, "int8", scope="softmx")
    (tmp_path / "q.yaml").write_text("schema_version: 1\nscope: [linearr]\ndefaults: {activations: int8}\n")
    with pytest.raises(ConfigError, match="scope"):
        quantize_graph(minilm, config=tmp_path / "q.yaml")
    assert main(["simulate", "gemm:m=2,k=8,n=4", "--activations", "int8", "--scope", "everything"]) == 2
    assert "mac_inputs" in capsys.readouterr().err


def test_simulate_table_shows_quantized_tensors(capsys):
    assert main(["simulate", "minilm-l6:sequence=8", "--weights", "int8", "--activations", "int8",
                 "--scope", "mac_inputs", "--all-ops"]) == 0
    out = capsys.readouterr().out
    softmax = next(line for line in out.splitlines() if " softmax " in line)
    linear = next(line for line in out.splitlines() if " linear " in line)
    assert softmax.rstrip().endswith("fp32 -> int8") and linear.rstrip().endswith("int8 -> fp32")  # P feeds P@V
