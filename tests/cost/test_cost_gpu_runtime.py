"""Runtime facts of a GPU target (H100 under PyTorch, kernel traces in benchmarks/measure/h100/session3/): fused
attention, batch norm as several kernels, unaligned-channel convolutions off the matrix units."""

import pytest

from hwsim.cost.estimate import estimate
from hwsim.cost.fusion import FUSED_ATTENTION_NOTE, attention_roles
from hwsim.cost.unit import NARROW_CONV_NOTE
from hwsim.graph.zoo import load_model
from hwsim.targets import load_target
from hwsim.targets.schema import Target


def _h100(**compute) -> Target:
    d = load_target("h100-sxm").model_dump()
    d["compute"].update(compute)
    return Target.model_validate(d)


def _rows(model, target):
    return {r.name: r for r in estimate(model, target, weights="bf16", activations="bf16").layers}


def test_attention_roles_cover_every_bert_layer():
    roles = attention_roles(load_model("bert-base:layers=2"))
    for i in range(2):
        p = f"encoder.layer.{i}.attention"
        assert roles[f"{p}.qk"] == "qk" and roles[f"{p}.av"] == "av"
        assert roles[f"{p}.scaled"] == roles[f"{p}.softmax"] == "inner"
    assert len(roles) == 8  # nothing else: the linears, layer norms and GELUs stay kernels of their own


def test_a_softmax_with_two_readers_is_not_fused():
    from hwsim.graph.builder import Builder

    b = Builder("two-readers")
    q = b.input("q", (1, 2, 8, 4))
    k = b.input("k", (1, 2, 4, 8))
    v = b.input("v", (1, 2, 8, 4))
    p = b.softmax(b.matmul(q, k, "qk"), "softmax")
    b.output(b.matmul(p, v, "av"))
    b.output(b.act(p, "relu", "tap"))
    assert attention_roles(b.g) == {}


def test_fused_attention_keeps_scores_on_chip():
    model = "bert-base:layers=1,batch=8"
    plain, fused = _rows(model, _h100(fused_attention=False)), _rows(model, _h100(fused_attention=True))
    p = "encoder.layer.0.attention"
    assert FUSED_ATTENTION_NOTE in fused[f"{p}.qk"].note and FUSED_ATTENTION_NOTE in fused[f"{p}.av"].note
    scores = 8 * 12 * 128 * 128 * 2  # bf16 scores, what the unfused products write and read at L2
    assert plain[f"{p}.qk"].bytes["l2"] - fused[f"{p}.qk"].bytes["l2"] == pytest.approx(scores)
    assert plain[f"{p}.av"].bytes["l2"] - fused[f"{p}.av"].bytes["l2"] == pytest.approx(scores)
    for n in (f"{p}.scaled", f"{p}.softmax"):  # inside the kernel: no time, no traffic, their ops' energy
        assert fused[n].latency_s == 0 and sum(fused[n].bytes.values()) == 0 and fused[n].energy_j > 0
    # one kernel: only the second product pays the overhead
    t = load_target("h100-sxm")
    busy = {n: max([r.compute_s] + list(r.transfer_s.values())) for n, r in fused.items()}
    assert fused[f"{p}.qk"].latency_s == pytest.approx(busy[f"{p}.qk"])
    assert fused[f"{p}.av"].latency_s == pytest.approx(busy[f"{p}.av"] + t.layer_overhead_s)
    rest = set(plain) - {f"{p}.{s}" for s in ("qk", "scaled", "softmax", "av")}
    assert all(fused[n].latency_s == plain[n].latency_s for n in rest)


def _attention_at(fraction: float) -> Target:
    d = _h100(fused_attention=True).model_dump()
    for r in d["compute"]["rates"]:
        if r["activation"] == "bf16":
            r["attention_efficiency"] = r["efficiency"] * fraction
    return Target.model_validate(d)


def test_attention_efficiency_prices_the_fused_products():
    slow = _rows("bert-base:layers=1,batch=8", _attention_at(0.25))
    fast = _rows("bert-base:layers=1,batch=8", _attention_at(1.0))
    qk = "encoder.layer.0.attention.qk"
    assert slow[qk].compute_s == pytest.approx(4 * fast[qk].compute_s)


def test_batchnorm_kernels_each_pay_the_overhead():
    one, three = _rows("resnet18", _h100(batchnorm_kernels=1)), _rows("resnet18", _h100(batchnorm_kernels=3))
    t = load_target("h100-sxm")
    assert three["bn1"].latency_s - one["bn1"].latency_s == pytest.approx(2 * t.elementwise_overhead_s)
    assert three["relu"].latency_s == one["relu"].latency_s


@pytest.mark.parametrize("c, narrow", [(3, True), (4, True), (8, False), (64, False)])
def test_unaligned_input_channels_move_a_convolution_to_the_fp32_lanes(c, narrow):
    model = f"conv2d:batch=8,c={c},h=56,w=56,k=64,r=7,stride=2"
    on, off = _rows(model, _h100(unaligned_conv_on_fp32=True)), _rows(model, _h100(unaligned_conv_on_fp32=False))
    assert (NARROW_CONV_NOTE in on["conv"].note) is narrow
    if narrow:
        assert on["conv"].formats == "bf16 x bf16 as fp32 x fp32 -> fp32"
        assert on["conv"].compute_s > 5 * off["conv"].compute_s  # 138.7 fp32 against 2048 bf16 MACs/cycle/SM
    else:
        assert on["conv"].compute_s == off["conv"].compute_s


def test_depthwise_convolutions_keep_their_rate():
    model = "conv2d:batch=8,c=3,h=56,w=56,k=3,r=3,groups=3"
    on, off = _rows(model, _h100(unaligned_conv_on_fp32=True)), _rows(model, _h100(unaligned_conv_on_fp32=False))
    assert on["conv"].compute_s == off["conv"].compute_s
