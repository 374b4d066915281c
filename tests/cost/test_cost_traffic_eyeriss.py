"""Eyeriss' DRAM traffic: 16-bit partial sums, ReLU on chip and run-length-coded feature maps (Chen et al. JSSC'17)."""

from __future__ import annotations

import pytest

import hwsim
from hwsim.targets import load_target
from hwsim.targets.schema import RunLengthCoding

RLC = dict(level="dram", run_bits=5, level_bits=16, pairs_per_word=3, word_bits=64, source="JSSC'17 Fig. 8")

#: Chen et al. JSSC'17 Sec. VI: DRAM accesses of the CONV layers, 0.0029 (AlexNet, batch 4) and 0.0035 (VGG-16,
#: batch 3) 16-bit accesses per MAC, i.e. 15.4 MB and 321.1 MB
PUBLISHED_DRAM_MB = {"alexnet:classifier=false,batch=4": 15.4, "vgg16:classifier=false,batch=3": 321.1}


def test_run_length_code_size():
    rlc = RunLengthCoding(**RLC)
    assert rlc.coded_fraction(0.5, 16) == pytest.approx(2 / 3)  # 21.3 bits per pair, two elements per pair
    assert rlc.coded_fraction(0.0, 16) == 1.0  # would expand (21.3 bits per element): stored plain
    assert rlc.coded_fraction(0.9, 16) == pytest.approx(64 / 3 * 0.1 / (1 - 0.9 ** 32) / 16)
    with pytest.raises(ValueError, match="do not fit"):
        RunLengthCoding(**{**RLC, "word_bits": 62})


def test_coded_level_must_be_a_memory_level():
    t = load_target("eyeriss").model_dump()
    t["features"]["fmap_coding"]["level"] = "sram"
    with pytest.raises(ValueError, match="name a memory level"):
        type(load_target("eyeriss")).model_validate(t)


def _dram_bytes(report) -> dict[str, float]:
    return {r.name: r.bytes["dram"] for r in report.layers}


def test_eyeriss_moves_relu_outputs_coded_and_the_network_input_plain():
    plain = load_target("eyeriss").model_copy(update={"features": load_target("eyeriss").features.model_copy(
        update={"fmap_coding": None})})
    model = "alexnet:classifier=false,batch=4"
    coded = hwsim.estimate(model, "eyeriss", weights="int16", activations="int16")
    ref = hwsim.estimate(model, plain, weights="int16", activations="int16")
    c, p = _dram_bytes(coded), _dram_bytes(ref)
    assert c["pool1"] == pytest.approx(p["pool1"] * 2 / 3)  # reads and writes ReLU zeros, coded at z = 0.5
    # conv1 reads the image (no zeros) and its weights plain and writes its ReLU-folded output coded
    out = 4 * 96 * 55 * 55 * 2
    assert c["conv1"] == pytest.approx(p["conv1"] - out / 3)
    assert all(r.bytes["dram"] == 0 for r in coded.layers if r.op == "unary")  # ReLU in the ReLU module


@pytest.mark.parametrize("model", sorted(PUBLISHED_DRAM_MB))
def test_eyeriss_conv_dram_traffic_is_near_the_published(model):
    # before the coded maps, the folded ReLU and the block shape: 4.0x (AlexNet) and 3.3x (VGG-16)
    r = hwsim.estimate(model, "eyeriss", weights="int16", activations="int16")
    conv_mb = sum(x.bytes["dram"] for x in r.layers if x.op == "conv2d") / 1e6
    assert 0.8 < conv_mb / PUBLISHED_DRAM_MB[model] < 1.3


def test_psum_bits_prices_traffic_not_arithmetic():
    t = load_target("eyeriss")
    wide = t.model_copy(update={"compute": t.compute.model_copy(update={"psum_bits": None})})
    a = hwsim.estimate("vgg16:classifier=false,batch=3", t, weights="int16", activations="int16")
    b = hwsim.estimate("vgg16:classifier=false,batch=3", wide, weights="int16", activations="int16")
    assert a.total.energy_breakdown_j["mac"] == b.total.energy_breakdown_j["mac"]
    assert a.total.memory_energy_j["dram"] < b.total.memory_energy_j["dram"]


def test_row_stationary_macs_work_out_of_the_scratchpads():
    # every MAC reads its 16-bit ifmap and filter and reads and writes its 16-bit psum in the PE scratchpads
    # (Chen et al. ISCA'16 Sec. V); behind a ReLU half the MACs are gated and read the ifmap only (assumed 50% zeros)
    r = {x.name: x for x in hwsim.estimate("alexnet:classifier=false,batch=4", "eyeriss", weights="int16",
                                          activations="int16").layers}
    assert r["conv1"].bytes["rf"] == pytest.approx(r["conv1"].macs * (2 + 2 + 2 + 2))  # reads the image: no zeros
    assert r["conv2"].bytes["rf"] == pytest.approx(r["conv2"].macs * (2 + 0.5 * (2 + 2) + 0.5 * 2))


def test_eyeriss_on_chip_energy_is_within_half_of_the_measured_chip_power():
    # JSSC'17 Sec. VI-A: 278 mW for 115.3 ms per AlexNet batch of 4 (CONV layers), DRAM not included; hwsim's
    # chip part is its energy less the DRAM accesses (-76% before the scratchpad accesses were priced, now -40%)
    r = hwsim.estimate("alexnet:classifier=false,batch=4", "eyeriss", weights="int16", activations="int16")
    chip_j = r.total.energy_j - r.total.memory_energy_j["dram"]
    assert 0.5 < chip_j / (0.278 * 0.1153) < 1.0
