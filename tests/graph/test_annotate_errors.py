"""Quant-config mistakes name the file and the field or rule (issue 12), a rule that can change
nothing is refused instead of silently doing nothing, and a group_size no weight can hold is
refused before the simulator tries to pad to it (was 'out of memory ... use smaller model
parameters')."""

from __future__ import annotations

import pytest

from hwsim.cli import main
from hwsim.errors import ConfigError, HwsimError, UnknownFormatError
from hwsim.graph.annotate import QuantConfig, quantize_graph
from hwsim.graph.zoo import load_model

GEMM = "gemm:m=2,k=8,n=4"


def _cfg(tmp_path, text):
    p = tmp_path / "q.yaml"
    p.write_text("schema_version: 1\n" + text)
    return str(p)


@pytest.mark.parametrize("text,field", [
    ("defaults: {weights: int99}\n", "defaults.weights"),
    ("layers: [{match: gemm, accumulator: bogus}]\n", "layers.0.accumulator"),
    ("layers: [{match: '*', weights: int8}, {match: gemm, pruning: '7:3'}]\n", "layers.1.pruning"),
])
def test_field_errors_name_file_and_field(tmp_path, text, field):
    p = _cfg(tmp_path, text)
    with pytest.raises(ConfigError) as exc:
        QuantConfig.load(p)
    msg = str(exc.value)
    assert msg.startswith(f"{p}: field '{field}': ") and "\n" not in msg and "errors.pydantic.dev" not in msg, msg


def test_group_without_size_names_file_and_rule(tmp_path):
    p = _cfg(tmp_path, "defaults: {weights: int8, weight_granularity: group}\n")
    with pytest.raises(ConfigError, match=rf"^{p}: layer 'gemm': weight_granularity 'group' needs group_size"):
        quantize_graph(load_model(GEMM), config=p)


def test_unmatched_rule_names_file(tmp_path):
    p = _cfg(tmp_path, "layers: [{match: 'conv*', weights: int4}]\n")
    with pytest.raises(ConfigError, match=rf"^{p}: layers\[0\] \(match 'conv\*'\) matches no layer"):
        quantize_graph(load_model(GEMM), config=p)


def test_rule_matching_only_non_compute_ops_refused(tmp_path):
    p = _cfg(tmp_path, "defaults: {weights: int8}\nlayers: [{match: 'bn1', weights: int4}]\n")
    with pytest.raises(ConfigError, match=r"layers\[0\] \(match 'bn1'\) matches only ops without weights or MACs "
                                          r"\(batchnorm 'bn1'\)"):
        quantize_graph(load_model("resnet18"), config=p)


def test_huge_group_size_refused_naming_layer(tmp_path, capsys):
    p = _cfg(tmp_path, "defaults: {weights: int4, weight_granularity: group, group_size: 1000000000000}\n")
    with pytest.raises(ConfigError, match=r"layer 'gemm': group_size 1000000000000 is larger than the 8 weights "
                                          r"along the last axis of 'gemm.weight'"):
        quantize_graph(load_model(GEMM), config=p)
    assert main(["simulate", GEMM, "--config", p]) == 2
    err = capsys.readouterr().err
    assert "out of memory" not in err and "group_size" in err


def test_bad_format_from_api_is_a_user_error():
    with pytest.raises(UnknownFormatError):
        quantize_graph(load_model(GEMM), "int99", None)
    with pytest.raises(HwsimError):
        QuantConfig.simple("int8", "nope")
