"""Target schema: bundled targets load, extends: merges, malformed YAML names the field and the fix."""

import pytest
import yaml

from hwsim.errors import ConfigError, UnknownTargetError
from hwsim.targets import bundled_targets, load_target

BUNDLED = ["cortex-a78", "edgetpu", "eyeriss", "h100-sxm", "int8-npu", "rs-engine"]


def test_bundled_targets_and_published_numbers():
    ts = bundled_targets()
    assert sorted(ts) == BUNDLED
    h = ts["h100-sxm"]
    fp8 = next(r for r in h.compute.rates if r.weight == "fp8_e4m3fn")
    assert 2 * fp8.macs_per_cycle * h.compute.cores * h.clock_hz == pytest.approx(1979e12, rel=0.01)
    assert 2.0e12 < h.memory[-1].bandwidth_bytes_per_s <= 3.35e12  # achieved (fitted) <= HBM3 datasheet
    a78 = ts["cortex-a78"]
    assert {(r.activation, r.weight): r.macs_per_cycle for r in a78.compute.rates}[("int8", "int8")] == 32
    et = ts["edgetpu"]  # coral.ai: ~8 MB SRAM; PCIe Gen2 x1 = 5 GT/s with 8b/10b
    assert et.memory[0].size_bytes == 8 * 2**20 and et.memory[-1].bandwidth_bytes_per_s == 5.0e8
    # int8-npu's array, int8 x int8 only (coral.ai: 8-bit models only; int8-npu's int4 at 2x does not apply)
    assert et.compute.model_copy(update={"rates": ts["int8-npu"].compute.rates}) == ts["int8-npu"].compute
    assert [(r.activation, r.weight, r.macs_per_cycle) for r in et.compute.rates] == [("int8", "int8", 4096)]
    e = ts["eyeriss"].memory
    rel = [m.read_energy_pj_per_bit / e[0].read_energy_pj_per_bit for m in e]
    assert rel == pytest.approx([1, 2, 6, 200], rel=0.01)
    for t in ts.values():
        assert t.source and t.compute.source and all(m.source for m in t.memory)


def _write(tmp_path, data, name="t.yaml"):
    p = tmp_path / name
    p.write_text(yaml.safe_dump(data))
    return str(p)


def test_extends_overrides_only_what_it_names(tmp_path):
    p = _write(tmp_path, {"schema_version": 1, "extends": "cortex-a78", "name": "a78-fast-dram",
                          "description": "A78 with LPDDR5X", "memory": None})
    with pytest.raises(ConfigError):
        load_target(p)
    base = load_target("cortex-a78").model_dump()
    mem = base["memory"]
    mem[-1]["bandwidth_bytes_per_s"] = 6.7e10
    p = _write(tmp_path, {"schema_version": 1, "extends": "cortex-a78", "name": "a78x",
                          "description": "x", "memory": mem, "clock_hz": 3.0e9})
    t = load_target(p)
    assert t.name == "a78x" and t.clock_hz == 3.0e9 and t.memory[-1].bandwidth_bytes_per_s == 6.7e10
    assert t.compute == load_target("cortex-a78").compute


def _broken(tmp_path, mutate):
    raw = yaml.safe_load(open(load_target.__globals__["_bundled_dir"]().joinpath("int8-npu.yaml")))
    mutate(raw)
    return _write(tmp_path, raw)


def test_unknown_key(tmp_path):
    p = _broken(tmp_path, lambda r: r.update(colour="red"))
    with pytest.raises(ConfigError, match=r"field 'colour': unknown key; remove it"):
        load_target(p)


def test_negative_bandwidth(tmp_path):
    p = _broken(tmp_path, lambda r: r["memory"][1].update(bandwidth_bytes_per_s=-1))
    with pytest.raises(ConfigError, match=r"memory\.1\.bandwidth_bytes_per_s.*greater than 0.*fix the value"):
        load_target(p)


def test_missing_unit(tmp_path):
    def drop_unit(r):
        r["memory"][0]["bandwidth"] = r["memory"][0].pop("bandwidth_bytes_per_s")
    p = _broken(tmp_path, drop_unit)
    with pytest.raises(ConfigError, match=r"memory\.0\.bandwidth': unknown key; 'bandwidth' has no unit: "
                                          r"write 'bandwidth_bytes_per_s'"):
        load_target(p)


def test_number_with_unit_text(tmp_path):
    p = _broken(tmp_path, lambda r: r.update(clock_hz="500 MHz"))
    with pytest.raises(ConfigError, match=r"clock_hz.*plain number"):
        load_target(p)


def test_missing_source(tmp_path):
    p = _broken(tmp_path, lambda r: r["memory"][0].update(source=" "))
    with pytest.raises(ConfigError, match=r"memory\.0\.source.*citation"):
        load_target(p)


def test_unknown_target():
    with pytest.raises(UnknownTargetError, match="bundled name"):
        load_target("tpu-v9")


def test_an_unknown_extends_base_names_the_file_that_extends_it(tmp_path):
    """The error named the unknown base only, not which target file's extends: line held it."""
    child = tmp_path / "child.yaml"
    child.write_text("extends: int8-npuu\nname: child\ndescription: x\n")
    with pytest.raises(UnknownTargetError, match=r"child\.yaml: extends: unknown target 'int8-npuu'"):
        load_target(str(child))
