"""Gate count and energy of one multiply-accumulate, for any (activation, weight, accumulator).

The method is that of van Baalen et al. 2023, "FP8 versus INT8 for efficient deep learning
inference" (arXiv 2303.17951), Sec. 3.3 and App. B: area and power are taken proportional to the
count of 2-input gates, with components

    AND2 = OR2 = 1, AO21 = 2, MUX2 = XOR = HA = 3, FA = 7, FF = 6;
    N-bit adder = (N-1) FA + HA;  N x M multiplier = N*M AND2 + (N-1)(M-1) FA + (max(N,M)-1) HA;
    shifter of N bits by up to k places = N * ceil(log2(k+1)) MUX2;
    fixed-point accumulator "fx" = product bits + 12 (INT8: 15 + 12 = 27 bits; FP8-E4: 25 + 12 = 37).

Integer MAC: multiplier + accumulator adder + accumulator register.
Floating-point MAC (either operand float, or a float accumulator) is fused (FMA-like): significand
multiply, exponent add, exponent difference, alignment of the addend over a window of
``A + P + 2`` bits (A accumulator significand, P product significand), sticky OR, add, leading-zero
detection (2 gates/bit), normalisation shift over the same window, exponent adjust, rounding
increment over A bits, accumulator register. With these choices FP8-E4M3 x FP8-E4M3 into FP16
needs 1.56x the gates of INT8 x INT8 into fx and into FP32 2.78x (paper: 1.53x and 2.83x).

Weights that are not numbers in hardware are priced as what they are: binary {-1, +1} is a
conditional negation (XOR per activation bit), ternary adds a zeroing AND, signed binary {0, +-1
per region} is a mux with zero (the region sign is applied once at the accumulator), power-of-two
is a shifter plus negation. VQ weights run on their decoded centroids (int8 centroids assumed; the
look-ups are priced by the layer cost, not here). MX block formats add one shared-exponent add per
block, amortised per MAC.

Energy per gate is calibrated on Horowitz, ISSCC 2014 (45 nm): an 8-bit multiply (428 gates) is
0.2 pJ and a 32-bit add (220 gates) 0.1 pJ; the least-squares fit gives 0.4607 fJ/gate (both
points within 1.5%). Other nodes scale linearly with feature size (assumption: capacitance ~ L at
constant voltage).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

from hwsim import formats
from hwsim.formats import MacOperand
from hwsim.errors import ConfigError

AND2 = OR2 = 1
AO21 = 2
MUX2 = XOR = HA = 3
FA = 7
FF = 6
FX_GUARD_BITS = 12
#: least-squares fit of Horowitz's int8 multiply (0.2 pJ) and int32 add (0.1 pJ) at 45 nm, fJ/gate
ENERGY_PER_GATE_45NM_FJ = 4340.0 / 9419600.0 * 1000.0


@dataclass(frozen=True)
class GateCount:
    """2-input gate equivalents of one MAC, split by stage.

    Attributes
    ----------
    multiply : float
        Significand multiplier (or negation / mux / shifter), exponent add, sign.
    align_add : float
        Exponent difference, alignment shifter, sticky, and the accumulating adder.
    normalize_accumulate : float
        Leading-zero detect, normalisation shift, exponent adjust, rounding, accumulator register.
    total : float
        Sum of the three.
    """

    multiply: float
    align_add: float
    normalize_accumulate: float
    total: float


def adder_gates(n: int) -> int:
    """Ripple adder of ``n`` bits: (n-1) FA + HA."""
    return 0 if n <= 0 else (n - 1) * FA + HA


def multiplier_gates(n: int, m: int) -> int:
    """Array multiplier n x m: n*m AND2 partial products, (n-1)(m-1) FA + (max-1) HA reduction."""
    if n <= 0 or m <= 0:
        return 0
    return n * m * AND2 + (n - 1) * (m - 1) * FA + (max(n, m) - 1) * HA


def shifter_gates(n: int, k: int) -> int:
    """Barrel shifter of ``n`` bits by up to ``k`` places: n * ceil(log2(k+1)) MUX2."""
    return 0 if k <= 0 else n * math.ceil(math.log2(k + 1)) * MUX2


#: how a format enters the multiplier: the format answers (hwsim.formats.MacOperand)
_Operand = MacOperand


def _operand(name: str) -> _Operand:
    return formats.get(name).mac_operand_spec()


def _special_multiply(a: _Operand, w: _Operand) -> tuple[int, int]:
    """(gates, product bits) of an activation times a discrete weight (negate / mux / shift)."""
    n = a.sig_bits
    if w.kind == "binary":
        return n * XOR, n + 1
    if w.kind == "ternary":
        return n * (XOR + AND2), n + 1
    if w.kind == "signed_binary":
        return n * AND2, n + 1
    # pow2: shift up to w.shift places, negate, zero
    return shifter_gates(n + w.shift, w.shift) + (n + w.shift) * XOR + n * AND2, n + w.shift + 1


def _multiply(a: _Operand, w: _Operand) -> tuple[float, int, int]:
    """(gates, product significand bits, product exponent bits)."""
    if w.kind in ("binary", "ternary", "signed_binary", "pow2"):
        g, p = _special_multiply(a, w)
        return g, p, a.exp_bits
    g = multiplier_gates(a.sig_bits, w.sig_bits)
    if a.kind == "int" and w.kind == "int":
        p = a.sig_bits + w.sig_bits - (1 if a.signed and w.signed else 0)
        return g, p, 0
    g += XOR  # sign
    e = max(a.exp_bits, w.exp_bits)
    if a.exp_bits and w.exp_bits:
        g += adder_gates(e)
        e += 1
    for op in (a, w):
        if op.block:
            g += adder_gates(8) / op.block
    return g, a.sig_bits + w.sig_bits, e


def _fixed_accumulate(width: int) -> tuple[float, float]:
    """(align_add, normalize_accumulate) of a ``width``-bit integer accumulator."""
    return adder_gates(width), width * FF


def _float_accumulate(p: int, pe: int, acc) -> tuple[float, float]:
    """Fused accumulate of a p-bit product (exponent pe bits) into float format ``acc``."""
    a_sig, a_exp = acc.mantissa_bits + 1, acc.exponent_bits
    w = a_sig + p + 2
    levels = math.ceil(math.log2(w + 1))
    ediff = adder_gates(max(a_exp, pe) + 1)
    align = ediff + w * levels * MUX2 + w * OR2 + w * XOR + adder_gates(w)
    norm = 2 * w + w * levels * MUX2 + adder_gates(a_exp) + a_sig * HA + acc.bits * FF
    return align, norm


def fx_accumulator_bits(act_format: str, weight_format: str) -> int:
    """Width of the fixed-point ("FX+12") accumulator for one MAC, bits.

    van Baalen et al. (arXiv 2303.17951v2) size it as the product's fixed-point width plus 12 bits "to
    allow for 2^12 = 4096 extreme products": "For INT8, this means a 15+12 = 27-bit accumulator, and for
    e.g., FP8-E4, this would be INT37" (quoted from a literature note; tests/cost/test_cost_arith.py
    PAPER_GATE_NUMBERS says where). A float product of ``p`` significand bits is placed over
    ``2^e`` positions (``e`` the operands' exponent bits) plus a sign: ``p + 2^e + 1``, which gives the
    paper's 25 + 12 = 37 for E4M3 x E4M3. The paper states only those two widths; E2, E3, E5 and mixed
    pairs follow the same form (unchecked).
    """
    a, w = _operand(act_format), _operand(weight_format)
    _, p, _ = _multiply(a, w)
    return _fx_width(p, _placement_exp_bits(a, w))


def _placement_exp_bits(a: _Operand, w: _Operand) -> int:
    """Exponent bits that place a product in a fixed-point register (0: integer product)."""
    return max(a.exp_bits, w.exp_bits)


def _fx_width(p: int, e: int) -> int:
    return p + (1 << e) + 1 + FX_GUARD_BITS if e else p + FX_GUARD_BITS


@functools.lru_cache(maxsize=4096)
def mac_gates(act_format: str, weight_format: str, accumulator: str = "fx") -> GateCount:
    """Gate count of one MAC unit (see module docstring for the method).

    Parameters
    ----------
    act_format, weight_format : str
        Format names as :func:`hwsim.formats.get` reads them (``int8``, ``fp8_e4m3fn``, ``ternary``...).
    accumulator : str
        ``fx`` (fixed point sized to the product range + 12 bits), ``intN``, or a float format name
        (``fp16``, ``fp32``, ``bf16``).

    Returns
    -------
    GateCount
        2-input gate equivalents (AND2 = 1).
    """
    a, w = _operand(act_format), _operand(weight_format)
    mul, p, pe = _multiply(a, w)
    acc = accumulator.strip().lower()
    e = _placement_exp_bits(a, w)
    if acc == "fx":
        align, norm = _fixed_accumulate(_fx_width(p, e))
        if e:  # place the float product in the wide fixed-point register (2^e positions)
            align += shifter_gates(p, 1 << e)
    else:
        f = formats.get(acc)
        if f.can_accumulate and f.integer_codes:
            align, norm = _fixed_accumulate(f.bits)
            if e:
                align += shifter_gates(p, 1 << e)
        elif f.can_accumulate:
            align, norm = _float_accumulate(p, pe, f)
        else:
            raise ConfigError(f"accumulator {accumulator!r} must be 'fx', an integer or a float format")
    return GateCount(float(mul), float(align), float(norm), float(mul + align + norm))


def energy_per_gate_fj(technology_nm: float) -> float:
    """Energy of one 2-input gate toggle at ``technology_nm``, fJ (linear in feature size)."""
    if not technology_nm > 0:
        raise ConfigError(f"technology_nm must be > 0, got {technology_nm!r}")
    return ENERGY_PER_GATE_45NM_FJ * technology_nm / 45.0


def mac_energy_pj(act_fmt: str, w_fmt: str, accumulator: str = "fx", technology_nm: float = 45.0) -> float:
    """Energy of one MAC, pJ: :func:`mac_gates` total x energy per gate at ``technology_nm``."""
    return mac_gates(act_fmt, w_fmt, accumulator).total * energy_per_gate_fj(technology_nm) * 1e-3


def add_energy_pj(bits: int, technology_nm: float = 45.0) -> float:
    """Energy of one ``bits``-bit addition, pJ (Horowitz: 32-bit add ~ 0.1 pJ at 45 nm)."""
    return adder_gates(bits) * energy_per_gate_fj(technology_nm) * 1e-3


def multiply_energy_pj(bits: int, technology_nm: float = 45.0) -> float:
    """Energy of one ``bits`` x ``bits`` integer multiply, pJ (Horowitz: 8-bit ~ 0.2 pJ at 45 nm)."""
    return multiplier_gates(bits, bits) * energy_per_gate_fj(technology_nm) * 1e-3


def unpack_gates(bits: int) -> int:
    """Gates to extract one ``bits``-bit field from a packed byte and sign-extend it to 8 bits."""
    return shifter_gates(8, 8 - bits) + 8 * AND2 if bits < 8 else 0
