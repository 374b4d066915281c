"""Name parsing: bundled names, generic names, derived constants, helpful errors."""

import ml_dtypes
import numpy as np
import pytest

import hwsim.formats as F
from hwsim.errors import UnknownFormatError

EXPECTED = {  # name: (kind, bits, bits_per_element, is_float, signed, max)
    "int8": ("int", 8, 8.0, False, True, 127.0),
    "uint8": ("int", 8, 8.0, False, False, 255.0),
    "int4": ("int", 4, 4.0, False, True, 7.0),
    "uint4": ("int", 4, 4.0, False, False, 15.0),
    "int2": ("int", 2, 2.0, False, True, 1.0),
    "uint2": ("int", 2, 2.0, False, False, 3.0),
    "ternary": ("ternary", 2, 2.0, False, True, 1.0),
    "binary": ("binary", 1, 1.0, False, True, 1.0),
    "signed_binary": ("signed_binary", 1, 1.0, False, True, 1.0),
    "pow2_4": ("pow2", 4, 4.0, False, True, 1.0),
    "fp16": ("float", 16, 16.0, True, True, 65504.0),
    "fp8_e4m3fn": ("float", 8, 8.0, True, True, 448.0),
    "fp8_e4m3fnuz": ("float", 8, 8.0, True, True, 240.0),
    "fp8_e5m2": ("float", 8, 8.0, True, True, 57344.0),
    "fp8_e5m2fnuz": ("float", 8, 8.0, True, True, 57344.0),
    "fp6_e2m3fn": ("float", 6, 6.0, True, True, 7.5),
    "fp6_e3m2fn": ("float", 6, 6.0, True, True, 28.0),
    "fp4_e2m1fn": ("float", 4, 4.0, True, True, 6.0),
    "mxfp4_e2m1": ("block", 4, 4.25, True, True, 6.0),
    "mxfp8_e4m3": ("block", 8, 8.25, True, True, 448.0),
    "mxint8": ("block", 8, 8.25, False, True, 1.984375),
    "vq_d2_b6": ("vq", 6, 3.0, False, True, float("inf")),
}

ML = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16", "fp8_e4m3fn": "float8_e4m3fn",
      "fp8_e4m3fnuz": "float8_e4m3fnuz", "fp8_e5m2": "float8_e5m2",
      "fp8_e5m2fnuz": "float8_e5m2fnuz", "fp6_e2m3fn": "float6_e2m3fn",
      "fp6_e3m2fn": "float6_e3m2fn", "fp4_e2m1fn": "float4_e2m1fn"}


@pytest.mark.parametrize("name", F.names())
def test_bundled_names_round_trip(name):
    fmt = F.get(name)
    assert fmt.name == name
    assert F.get(name.upper()) == fmt
    assert F.get(fmt) is fmt
    assert fmt.bits >= 1 and fmt.bits_per_element >= fmt.bits / 64


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_derived_constants(name):
    fmt = F.get(name)
    got = (fmt.kind, fmt.bits, fmt.bits_per_element, fmt.is_float, fmt.signed, fmt.max)
    assert got == EXPECTED[name]


@pytest.mark.parametrize("name", sorted(ML))
def test_float_constants_match_ml_dtypes(name):
    fmt = F.get(name)
    fi = ml_dtypes.finfo(getattr(ml_dtypes, ML[name], None) or getattr(np, ML[name]))
    assert fmt.max == float(fi.max)
    assert fmt.min_normal == float(fi.smallest_normal)
    assert fmt.min_subnormal == float(fi.smallest_subnormal)
    assert fmt.epsilon == float(fi.eps)
    assert fmt.bits == fi.bits
    assert F.get(ML[name]) == fmt  # ml_dtypes spelling parses too


@pytest.mark.parametrize("n", range(1, 17))
def test_generic_ints(n):
    assert F.get(f"uint{n}").max == 2**n - 1
    if n >= 2:
        fmt = F.get(f"int{n}")
        assert (fmt.min, fmt.max) == (-(2 ** (n - 1)), 2 ** (n - 1) - 1)
        assert F.get(f"int{n}_narrow").min == -(2 ** (n - 1)) + 1


def test_int1_is_rejected_with_hint():
    with pytest.raises(UnknownFormatError, match="binary"):
        F.get("int1")


@pytest.mark.parametrize("e", range(1, 7))
def test_generic_fp8(e):
    m = 7 - e
    fmt = F.get(f"fp8_e{e}m{m}") if e >= 2 else F.get(f"fp8_e{e}m{m}fn")
    assert (fmt.exponent_bits, fmt.mantissa_bits, fmt.bits) == (e, m, 8)
    assert F.get(fmt.name) == fmt


def test_generic_variants():
    assert F.get("fp8_e3m4").max == 15.5  # ieee: top binade reserved, 1.9375 * 2^3
    assert F.get("fp8_e3m4fn").max == 30.0  # fn: 1.875 * 2^4
    assert F.get("fp8_e3m4fnuz").bias == 4
    assert F.get("fp6_e2m3fn").nan_policy == "finite"
    assert F.get("fp8_e4m3fn_b8").max == 224.0
    assert F.get("fp12_e5m6").bits == 12
    assert F.get("mxfp4_e2m1_k16").bits_per_element == 4.5
    assert F.get("vq_d4_b12").bits_per_element == 3.0
    assert F.get("pow2_5").max == 1.0


@pytest.mark.parametrize("bad", ["int0", "int99", "fp8_e4m4", "fp8_e9m9", "float", "nope",
                                 "vq_d0_b4", "pow2_1", "mxfp8_e4m4", "", "fp8_e4m3xx"])
def test_bad_names(bad):
    if bad == "float":  # alias of fp32
        assert F.get(bad).name == "fp32"
        return
    with pytest.raises(UnknownFormatError) as exc:
        F.get(bad)
    assert "valid names" in str(exc.value) and "fp8_e4m3fn" in str(exc.value)


def test_non_string_name():
    with pytest.raises(UnknownFormatError):
        F.get(8)
