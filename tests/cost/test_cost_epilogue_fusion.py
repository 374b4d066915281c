"""epilogue_fusion: batch-norms and simple activations after a float-weight conv/linear cost nothing."""

from hwsim.cost.estimate import estimate
from hwsim.targets import load_target
from hwsim.targets.schema import Target


def _target(fuse: bool) -> Target:
    d = load_target("cortex-a78").model_dump()
    d["compute"]["epilogue_fusion"] = fuse
    return Target.model_validate(d)


def _rows(model, fuse, fmt):
    return {r.name: r for r in estimate(model, _target(fuse), weights=fmt, activations=fmt).layers}


def test_float_conv_absorbs_its_batchnorm_and_relu():
    plain, fused = _rows("resnet18", False, "fp16"), _rows("resnet18", True, "fp16")
    folded = set(plain) - set(fused)  # rows that cost nothing leave the report
    assert {plain[n].op for n in folded} == {"batchnorm", "unary"}
    assert all(plain[n].op != "batchnorm" for n in fused)
    # the ReLU after a residual add is not a conv's epilogue; every MAC layer costs what it did
    assert any(r.op == "unary" for r in fused.values())
    assert all(fused[n].latency_s == plain[n].latency_s for n in plain if plain[n].macs)


def test_quantized_weights_keep_their_batchnorm_and_what_follows():
    assert _rows("resnet18", True, "int8").keys() == _rows("resnet18", False, "int8").keys()
