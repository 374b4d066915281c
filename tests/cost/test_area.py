"""Area model (hwsim.cost.area): calibration against its sources and the laws it must keep."""

import pytest

from hwsim import estimate
from hwsim.cost import arith
from hwsim.cost.area import BITCELL_UM2, GATE_AREA_45NM_UM2, area, bitcell_um2, gate_area_um2, sram_mm2
from hwsim.errors import ConfigError
from hwsim.targets import load_target


def _variant(tmp_path, body: str) -> str:
    p = tmp_path / "v.yaml"
    p.write_text(f"schema_version: 1\nname: v\ndescription: d\nextends: int8-npu\n{body}\n")
    return str(p)


def test_gate_area_reproduces_horowitz_45nm_areas():
    # Horowitz ISSCC 2014: int8 multiply 282 um^2, int32 add 137 um^2
    assert arith.multiplier_gates(8, 8) * GATE_AREA_45NM_UM2 == pytest.approx(282, rel=0.05)
    assert arith.adder_gates(32) * GATE_AREA_45NM_UM2 == pytest.approx(137, rel=0.05)
    assert gate_area_um2(45) == GATE_AREA_45NM_UM2


def test_bitcell_table_shrinks_with_node_and_interpolates_between():
    nodes = sorted(BITCELL_UM2)
    cells = [bitcell_um2(n) for n in nodes]
    assert cells == sorted(cells)
    assert bitcell_um2(16) < bitcell_um2(20) < bitcell_um2(22)
    assert bitcell_um2(3) == pytest.approx(BITCELL_UM2[5][0] * (3 / 5) ** 2)
    # 1 MiB at 16 nm: 8.4 Mbit x 0.07 um^2 / 0.6 = 0.98 mm^2
    assert sram_mm2(2 ** 20, 16) == pytest.approx(2 ** 23 * 0.07 / 0.6 * 1e-6)


def test_bundled_npu_area_by_part():
    a = area(load_target("int8-npu"))
    assert a.area_mm2 == pytest.approx(a.mac_array_mm2 + a.registers_mm2 + a.sram_mm2 + a.other_mm2)
    assert a.sram_mm2 == pytest.approx(sram_mm2(8 * 2 ** 20, 16))
    assert 0.1 < a.mac_array_mm2 < a.sram_mm2  # 4096 int8 MACs at 16 nm: well under a mm^2 each way
    assert area(load_target("h100-sxm")) is None  # no area: block, no area reported


def test_area_grows_with_array_and_sram(tmp_path):
    base = area(load_target("int8-npu"))
    big = area(load_target(_variant(tmp_path, "compute: {rows: 128, cols: 128}")))
    assert big.mac_array_mm2 == pytest.approx(4 * base.mac_array_mm2)
    more = area(load_target(_variant(tmp_path, "memory:\n" + "\n".join(
        f"  - {line}" for line in _levels(16 * 2 ** 20)))))
    assert more.sram_mm2 == pytest.approx(2 * base.sram_mm2)


def _levels(sram_bytes):
    t = load_target("int8-npu")
    out = []
    for m in t.memory:
        d = m.model_dump()
        if m.name == "sram":
            d["size_bytes"] = sram_bytes
        out.append("{" + ", ".join(f"{k}: {v!r}" if isinstance(v, str) else f"{k}: {'null' if v is None else v}"
                                   for k, v in d.items()) + "}")
    return out


def test_sram_levels_must_name_a_bounded_level(tmp_path):
    with pytest.raises(ConfigError, match=r"area.sram_levels \['dram'\]"):
        load_target(_variant(tmp_path, "area: {sram_levels: [dram], other_mm2: 1, source: x}"))


def test_estimate_reports_area_only_for_chips():
    r = estimate("conv2d", "int8-npu")
    assert r.to_json()["area"]["area_mm2"] == pytest.approx(r.area.area_mm2)
    assert "area" not in estimate("conv2d", "cortex-a78").to_json()
