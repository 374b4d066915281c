"""User YAML is read with bounds: duplicate keys, deep nesting and alias bombs are refused with a
ConfigError naming the file, and error messages never repr unbounded input (issue 12)."""

from __future__ import annotations

import tracemalloc

import pytest

from hwsim.cli import main
from hwsim.errors import ConfigError
from hwsim.yamlio import brief, read_mapping

TARGET_HEAD = "schema_version: 1\nname: n\n"


def test_duplicate_key_refused_naming_key_and_line():
    with pytest.raises(ConfigError, match=r"t\.yaml: key 'clock_hz' given twice \(lines 2 and 3\)"):
        read_mapping("name: a\nclock_hz: 1.0e9\nclock_hz: 2.0e9\n", "t.yaml", "...")


def test_duplicate_key_in_nested_mapping_refused():
    with pytest.raises(ConfigError, match="key 'n' given twice"):
        read_mapping("a: {n: 1, m: 2, n: 3}\n", "t.yaml", "...")


def test_merge_keys_are_not_duplicates():
    raw = read_mapping("base: &b {x: 1, y: 2}\nc: {<<: *b, y: 3}\n", "t.yaml", "...")
    assert raw["c"] == {"x": 1, "y": 3}


@pytest.mark.parametrize("opener,closer", [("[", "]"), ("{a: ", "}")])
def test_deep_nesting_refused_not_recursion_error(opener, closer):
    text = TARGET_HEAD + "compute: " + opener * 20000 + ("1" if opener != "[" else "") + closer * 20000 + "\n"
    with pytest.raises(ConfigError, match="nested deeper than"):
        read_mapping(text, "deep.yaml", "...")


def _bomb(levels: int = 7, width: int = 9) -> str:
    items = ["&a0 [" + ", ".join(["x"] * width) + "]"]
    items += [f"&a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]" for i in range(1, levels)]
    return "schema_version: 1\nname: bomb\nfamily: gemm\nsource: x\nparams: {m: [" + ", ".join(items) + "]}\n"


def test_alias_bomb_refused_before_expansion():
    tracemalloc.start()
    try:
        with pytest.raises(ConfigError, match="aliases expand to more than"):
            read_mapping(_bomb(), "bomb.yaml", "...")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20e6, peak


def test_few_aliases_still_work():
    raw = read_mapping("s: &s 'Horowitz 2014'\na: {source: *s}\nb: {source: *s}\n", "t.yaml", "...")
    assert raw["a"]["source"] == raw["b"]["source"] == "Horowitz 2014"


def test_recursive_alias_refused():
    with pytest.raises(ConfigError, match="inside its own anchor"):
        read_mapping("a: &a [1, *a]\n", "t.yaml", "...")


def test_alias_bomb_cli_short_message(tmp_path, capsys):
    """The 405-byte bomb used to write 28 MB to stderr (2.1 GB with one more level)."""
    p = tmp_path / "bomb.yaml"
    p.write_text(_bomb())
    assert main(["estimate", str(p), "--target", "int8-npu"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and len(err) < 500, err[:600]


def test_large_value_in_error_is_shortened(tmp_path, capsys):
    """A bad model parameter holding a big (alias-free) list is named, not printed whole."""
    p = tmp_path / "big.yaml"
    p.write_text("schema_version: 1\nname: big\nfamily: gemm\nsource: x\nparams: {m: [" + ", ".join(["7"] * 5000) + "]}\n")
    assert main(["estimate", str(p), "--target", "int8-npu"]) == 2
    err = capsys.readouterr().err
    assert "parameter m=" in err and len(err) < 600, err[:800]


def test_brief():
    assert brief("abc") == "'abc'"
    long = brief(list(range(10**5)))
    assert len(long) <= 80 and "..." in long
