"""safetensors reader and load_weights on small files written here (no pretrained package needed)."""

import json
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim.errors import ConfigError, HwsimError, InputDataError
from hwsim.graph.builder import Builder
from hwsim.graph.safetensors import DTYPES, load_weights, read_header, read_safetensors
from hwsim.graph.zoo import load_model

_NP = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1", "U8": "u1",
       "BOOL": "?"}


def write(path, tensors: dict, header_extra=None, pad_header: int = 0, metadata=None) -> None:
    """Writer built from the format description alone: (dtype name, array or raw bytes) per tensor."""
    header, blobs, off = {}, [], 0
    for name, (dtype, arr) in tensors.items():
        raw = arr if isinstance(arr, bytes) else np.ascontiguousarray(arr).tobytes()
        shape = list(arr.shape) if hasattr(arr, "shape") else [len(raw) // 2]
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    if metadata is not None:
        header["__metadata__"] = metadata
    header.update(header_extra or {})
    h = json.dumps(header).encode() + b" " * pad_header
    path.write_bytes(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def test_round_trip_every_integer_and_float_dtype(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {d: (rng.standard_normal((3, 4)) * 50).astype(np.dtype(t)) for d, t in _NP.items()}
    write(tmp_path / "a.safetensors", {f"t.{d}": (d, a) for d, a in arrays.items()}, metadata={"format": "np"},
          pad_header=5)
    got = read_safetensors(tmp_path / "a.safetensors")
    assert set(got) == {f"t.{d}" for d in _NP}
    for d, a in arrays.items():
        g = got[f"t.{d}"]
        assert g.shape == (3, 4)
        want = a.astype(np.float32) if d in ("F16", "F64") else a
        np.testing.assert_array_equal(g, want)
        assert g.dtype == (np.float32 if d.startswith("F") else a.dtype)


def test_bf16_is_the_top_half_of_float32(tmp_path):
    vals = np.array([1.0, -2.5, 3.140625, 0.0, -0.0, np.inf, 65280.0, 1e-38], np.float32)
    bits = (vals.view(np.uint32) >> 16).astype("<u2")
    write(tmp_path / "b.safetensors", {"w": ("BF16", bits.reshape(2, 4))})
    got = read_safetensors(tmp_path / "b.safetensors")["w"]
    assert got.dtype == np.float32 and got.shape == (2, 4)
    np.testing.assert_array_equal(got.reshape(-1), (bits.astype(np.uint32) << 16).view(np.float32))
    assert got.reshape(-1)[:3].tolist() == [1.0, -2.5, 3.140625]


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["F32", "F16", "I32", "U8"]),
                          st.lists(st.integers(0, 4), min_size=0, max_size=3)), min_size=1, max_size=5),
       st.integers(0, 2**31 - 1))
def test_any_layout_round_trips(tmp_path_factory, specs, seed):
    rng = np.random.default_rng(seed)
    arrays = {f"t{i}": (d, (rng.standard_normal(tuple(s)) * 9).astype(_NP[d])) for i, (d, s) in enumerate(specs)}
    p = tmp_path_factory.mktemp("h") / "x.safetensors"
    write(p, arrays)
    got = read_safetensors(p)
    for name, (d, a) in arrays.items():
        np.testing.assert_array_equal(got[name], a.astype(np.float32) if d == "F16" else a)


def test_names_filter_reads_only_those(tmp_path):
    write(tmp_path / "c.safetensors", {"a": ("F32", np.ones(2, np.float32)), "b": ("F32", np.zeros(3, np.float32))})
    assert list(read_safetensors(tmp_path / "c.safetensors", {"b"})) == ["b"]


def _short(path):
    path.write_bytes(b"\x01\x02")
    return path


def _raw(path, header_bytes: bytes, length=None, data=b""):
    n = len(header_bytes) if length is None else length
    path.write_bytes(struct.pack("<Q", n) + header_bytes + data)
    return path


@pytest.mark.parametrize("make, words", [
    (lambda p: _short(p), "shorter than the 8-byte"),
    (lambda p: _raw(p, b"{}", length=10_000), "does not fit"),
    (lambda p: _raw(p, b"{not json"), "not UTF-8 JSON"),
    (lambda p: _raw(p, b"[1, 2]"), "not a JSON object"),
    (lambda p: _raw(p, json.dumps({"w": {"dtype": "F32", "shape": [2]}}).encode()), "needs dtype, shape"),
    (lambda p: _raw(p, json.dumps({"w": {"dtype": "F8_E4M3", "shape": [2], "data_offsets": [0, 2]}}).encode(),
                    data=b"\0\0"), "dtype 'F8_E4M3'"),
    (lambda p: _raw(p, json.dumps({"w": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}}).encode(),
                    data=b"\0" * 8), "non-negative"),
    (lambda p: _raw(p, json.dumps({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0]}}).encode()),
     r"not \[begin, end\]"),
    (lambda p: _raw(p, json.dumps({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}).encode(),
                    data=b"\0" * 8), "outside the 8-byte"),
    (lambda p: _raw(p, json.dumps({"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}).encode(),
                    data=b"\0" * 8), "needs 12"),
])
def test_malformed_files_raise_input_errors(tmp_path, make, words):
    p = make(tmp_path / "bad.safetensors")
    with pytest.raises(InputDataError, match=words) as info:
        read_safetensors(p)
    assert "safetensors" in str(info.value) and isinstance(info.value, HwsimError)


def test_missing_file(tmp_path):
    with pytest.raises(InputDataError, match="not found"):
        read_header(tmp_path / "nope.safetensors")


def _tiny_graph():
    b = Builder("tiny")
    x = b.input("x", (1, 4))
    b.output(b.layernorm(b.linear(x, 3, "fc"), "ln"))
    return b.g


def test_load_weights_sets_data_by_name_and_maps_names(tmp_path):
    rng = np.random.default_rng(1)
    w, bias = rng.standard_normal((3, 4)).astype(np.float32), rng.standard_normal(3).astype(np.float32)
    write(tmp_path / "m.safetensors", {"model.fc.weight": ("F32", w), "fc.bias": ("F16", bias.astype(np.float16)),
                                       "ln.weight": ("F32", np.full(3, 2, np.float32)),
                                       "ln.bias": ("F32", np.zeros(3, np.float32)),
                                       "position_ids": ("I64", np.arange(3))})
    g0 = _tiny_graph()
    g = load_weights(g0, tmp_path / "m.safetensors", {"model.fc.weight": "fc.weight", "position_ids": None})
    np.testing.assert_array_equal(g.tensors["fc.weight"].data, w)
    np.testing.assert_array_equal(g.tensors["fc.bias"].data, bias.astype(np.float16).astype(np.float32))
    assert g.tensors["ln.weight"].data.tolist() == [2, 2, 2]
    assert g0.tensors["fc.weight"].data is None  # the input graph is left alone
    assert any("model.safetensors" in n or "m.safetensors" in n for n in g.notes)


def test_load_weights_lists_unmatched_names_on_both_sides(tmp_path):
    write(tmp_path / "m.safetensors", {"fc.weight": ("F32", np.zeros((3, 4), np.float32)),
                                       "extra.buffer": ("F32", np.zeros(2, np.float32))})
    with pytest.raises(ConfigError) as info:
        load_weights(_tiny_graph(), tmp_path / "m.safetensors")
    msg = str(info.value)
    assert "['extra.buffer']" in msg and "fc.bias" in msg and "ln.weight" in msg and "name_map" in msg


def test_load_weights_checks_shapes(tmp_path):
    write(tmp_path / "m.safetensors", {"fc.weight": ("F32", np.zeros((4, 3), np.float32)),
                                       "fc.bias": ("F32", np.zeros(3, np.float32)),
                                       "ln.weight": ("F32", np.zeros(3, np.float32)),
                                       "ln.bias": ("F32", np.zeros(3, np.float32))})
    with pytest.raises(ConfigError, match=r"fc.weight: file \[4, 3\] vs graph \[3, 4\]"):
        load_weights(_tiny_graph(), tmp_path / "m.safetensors")


def test_minilm_zoo_entry_has_the_checkpoint_parameter_count():
    # 22,713,216 = the 104 float tensors of all-MiniLM-L6-v2's model.safetensors (pooler included)
    assert load_model("minilm-l6").total_params == 22_713_216
    assert load_model("minilm-l6:pooler=false").total_params == 22_565_376


def test_every_dtype_is_readable():
    assert set(_NP) | {"BF16"} == set(DTYPES)
