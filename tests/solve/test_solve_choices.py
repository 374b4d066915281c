"""Choice parsing, target defaults and the applicability of pruning."""

from __future__ import annotations

import pytest

from hwsim.errors import ConfigError, UnknownFormatError
from hwsim.graph.quant import Pruning
from hwsim.solve.choices import Choice, choices_for, parse_choices, target_choices
from hwsim.targets import load_target


def test_cross_product_in_order():
    cs = parse_choices("w=int8,int4,int2;a=int8;prune=0,2:4")
    assert [(c.weight_format, c.activation_format, c.pruning.label) for c in cs] == [
        ("int8", "int8", "0"), ("int8", "int8", "2:4"), ("int4", "int8", "0"), ("int4", "int8", "2:4"),
        ("int2", "int8", "0"), ("int2", "int8", "2:4")]


def test_missing_keys_come_from_target_defaults():
    npu = load_target("int8-npu")
    cs = choices_for("w=int4,int2", npu)
    acts = {c.activation_format for c in target_choices(npu)}
    assert {c.activation_format for c in cs} == acts
    assert {c.weight_format for c in cs} == {"int4", "int2"}
    assert all(c.pruning.kind == "none" for c in cs)


def test_target_defaults_follow_rates_and_sparsity_features():
    h100 = target_choices(load_target("h100-sxm"))
    assert Choice(weight_format="int8", activation_format="int8", pruning=Pruning(kind="nm", n=2, m=4)) in h100
    rs = target_choices(load_target("rs-engine"))
    assert any(c.pruning.kind == "unstructured" for c in rs)  # it skips zero weights
    npu = target_choices(load_target("int8-npu"))
    assert all(c.pruning.kind == "none" for c in npu)  # a dense engine gains nothing from pruning
    pairs = {(r.activation, r.weight) for r in load_target("int8-npu").compute.rates}
    assert {(c.activation_format, c.weight_format) for c in npu} == pairs


@pytest.mark.parametrize("bad, err", [("w=int8;x=1", ConfigError), ("w=", ConfigError), ("int8", ConfigError),
                                      ("w=int9x", UnknownFormatError), ("w=int8;prune=2:2", ConfigError)])
def test_bad_spellings_are_user_errors(bad, err):
    with pytest.raises(err):
        parse_choices(bad, target_choices(load_target("int8-npu")))


def test_labels_and_bits():
    c = Choice(weight_format="int4", activation_format="int8", pruning=Pruning.parse("50%"))
    assert c.label == "w=int4,a=int8/50%"
    assert (c.weight_bits, c.activation_bits) == (4.0, 8.0)
