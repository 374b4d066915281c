"""A memory level may be called anything but a bottleneck label (compute, power), including mac / decode / static / memory: level energies
live in their own mapping (``memory_energy_j``), apart from the other components, so no name can
overwrite another's energy (issue 12: a level named 'mac' dropped 1.21 mJ to 1.02 mJ)."""

from __future__ import annotations

import pytest
import yaml

from hwsim.cost import estimate
from hwsim.targets import load_target

COMPONENTS = {"mac", "decode", "memory", "static"}


def _renamed(tmp_path, name):
    t = load_target("int8-npu").model_dump(mode="json")
    t["memory"][0]["name"] = name
    if t.get("area"):
        t["area"]["sram_levels"] = [name]
    t["name"] = f"npu-{name}"
    p = tmp_path / f"{name}.yaml"
    p.write_text(yaml.safe_dump(t))
    return str(p)


@pytest.mark.parametrize("name", ["mac", "decode", "static", "memory"])
def test_level_named_like_a_component_keeps_every_joule(tmp_path, name):
    ref = estimate("resnet18", "int8-npu")
    got = estimate("resnet18", _renamed(tmp_path, name))
    assert got.total.energy_j == pytest.approx(ref.total.energy_j, rel=1e-12)
    assert got.total.memory_energy_j[name] == pytest.approx(ref.total.memory_energy_j["sram"], rel=1e-12)
    for r in got.layers:
        assert set(r.energy_breakdown_j) == COMPONENTS
        assert r.energy_j == pytest.approx(sum(r.energy_breakdown_j.values()))
        assert r.energy_breakdown_j["memory"] == pytest.approx(sum(r.memory_energy_j.values()))


def test_json_shape(tmp_path):
    d = estimate("gemm", "int8-npu").to_json()
    assert set(d["total"]["energy_breakdown_j"]) == COMPONENTS
    assert set(d["total"]["memory_energy_j"]) == {"sram", "dram"}
    assert set(d["layers"][0]["memory_energy_j"]) == {"sram", "dram"}


@pytest.mark.parametrize("name", ["compute", "power"])
def test_level_named_like_a_bottleneck_label_is_refused(tmp_path, name):
    """'compute' and 'power' name the MAC unit and the power cap in the bottleneck column: a level
    called so would make a memory-bound layer read as compute- or power-bound."""
    from hwsim.errors import HwsimError

    with pytest.raises(HwsimError, match=rf"\['{name}'\] are bottleneck labels.*rename the level"):
        load_target(_renamed(tmp_path, name))
