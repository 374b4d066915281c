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
    g = quantize_graph(minilm, "int8", "int8", scope="all")
    assert _fmt(g, "softmax") == {"int8"} and _fmt(g, "layernorm") == {"int8"}


@pytest.mark.parametrize("scope", [None, "mac_inputs"])  # mac_inputs is the default
def test_mac_inputs_leaves_softmax_and_norms_float(minilm, scope):
    g = quantize_graph(minilm, "int8", "int8", scope=scope)
    assert _fmt(g, "linear") == {"int8"} and _fmt(g, "matmul") == {"int8"}
    assert _fmt(g, "softmax") == {"fp32"} and _fmt(g, "layernorm") == {"fp32"}
    mac = {t for o in g.ops() if o.is_compute for t in o.inputs}
    views = {"reshape", "transpose", "flatten", "squeeze", "unsqueeze", "kv_cache_read", "kv_cache_append"}
    stored = set(mac)  # and the tensors those are views of (the linear output behind a head reshape)
    for op in reversed(g.ops()):
        if op.op in views and op.outputs[0] in stored:
            stored |= set(op.inputs)
    assert stored - mac, "MiniLM's attention reads its linear outputs through views"
    for op in g.ops():  # every activation a MAC op reads (at its source) is int8, every other tensor fp32
        for t in op.outputs:
            assert (g.tensors[t].quant.format == "int8") == (t in stored), t


def test_kv_cache_is_stored_in_the_activation_format():
    g = quantize_graph(load_model("llama2-7b:phase=decode,context=16,layers=1"), "int8", "int8")
    caches = [t for t in g.tensors.values() if t.role == "kv_cache"]
    assert caches and {t.quant.format for t in caches} == {"int8"}


def test_op_kind_list(minilm):
    g = quantize_graph(minilm, None, "int8", scope="softmax,matmul")
    assert _fmt(g, "softmax") == {"int8"} and _fmt(g, "matmul") == {"int8"}
    assert "fp32" in _fmt(g, "linear")


def test_scope_in_config_file(tmp_path, minilm):
    (tmp_path / "q.yaml").write_text("schema_version: 1\nscope: mac_inputs\ndefaults: {weights: int8, activations: int8}\n")
    g = quantize_graph(minilm, config=tmp_path / "q.yaml")
    assert _fmt(g, "softmax") == {"fp32"}
    assert QuantConfig.load(tmp_path / "q.yaml").scope == "mac_inputs"
    (tmp_path / "d.yaml").write_text("schema_version: 1\ndefaults: {weights: int8, activations: int8}\n")
    assert QuantConfig.load(tmp_path / "d.yaml").scope is None  # unset: the target's, else mac_inputs
    assert _fmt(quantize_graph(minilm, config=tmp_path / "d.yaml"), "softmax") == {"fp32"}
    assert _fmt(quantize_graph(minilm, config=tmp_path / "d.yaml", target_scope="all"), "softmax") == {"int8"}
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
    linear = next(line for line in out.splitlines() if "intermediate.dense " in line)  # GELU reads it
    assert softmax.rstrip().endswith("fp32 -> int8") and linear.rstrip().endswith("int8 -> fp32")  # P feeds P@V


def _target_yaml(tmp_path, scope):
    (tmp_path / "t.yaml").write_text(f"schema_version: 1\nextends: int8-npu\nname: npu-{scope}\n"
                                     f"description: int8-npu storing {scope}\nactivation_scope: {scope}\n")
    return tmp_path / "t.yaml"


def test_estimate_takes_the_targets_activation_scope(tmp_path):
    """A target prices what it stores: bundled targets keep every tensor in the activation format
    (``all``); a target that says ``mac_inputs`` stores the rest fp32; an explicit scope wins."""
    from hwsim.cost import estimate

    m = "minilm-l6:sequence=8"

    def energy(target, **kw):
        return estimate(m, target, "int8", "int8", **kw).total.energy_j

    bundled, fp32_rest = energy("int8-npu"), energy(_target_yaml(tmp_path, "mac_inputs"))
    assert bundled == energy("int8-npu", scope="all") and bundled != energy("int8-npu", scope="mac_inputs")
    assert fp32_rest == energy("int8-npu", scope="mac_inputs") > bundled  # fp32 tensors move 4 bytes
    assert energy(_target_yaml(tmp_path, "mac_inputs"), scope="all") == bundled


def test_solved_plan_states_the_scope_it_was_priced_with():
    from hwsim.solve import plan_from, tables

    tb = tables("gemm:m=4,k=16,n=8", "int8-npu", "w=int8,int4;a=int8", "proxy")
    plan = plan_from(tb, {"energy_j": 1.0})
    assert plan.config().scope == "all" and "scope: all" in plan.config().dump()
