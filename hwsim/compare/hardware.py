"""Hardware side of the comparison: gates, energy per MAC and throughput per (format, accumulator).

Gate counts and energy come from :mod:`hwsim.cost.arith` (van Baalen et al. 2023, App. B method);
this module only picks the pairs and reads the target. Both operands of a MAC use the compared
format (activations x weights, e.g. fp8_e4m3fn x fp8_e4m3fn).

Default accumulators (:func:`default_accumulators`): integer and discrete formats (int, ternary,
binary, signed binary, pow2) accumulate in ``fx`` (fixed point sized to the product range + 12
bits); float formats are shown with both ``fp16`` and ``fp32`` accumulators (the two cases of the
paper's headline); MX block formats with ``fp32`` (OCP MX v1.0 defines the dot product result in
FP32).
"""

from __future__ import annotations

from hwsim.compare.results import TargetInfo
from hwsim.cost.arith import GateCount
from hwsim.errors import ConfigError
from hwsim.formats import Format, get

#: Reference MAC of ``relative_gates_int8``.
BASELINE = ("int8", "fx")
#: Technology when no target is given (Horowitz ISSCC 2014 numbers are for 45 nm).
DEFAULT_TECHNOLOGY_NM = 45.0
ACCUMULATORS_HELP = "use fx (fixed point, product range + 12 bits), intN (e.g. int32) or a float name (fp16, fp32, bf16)"


def default_accumulators(fmt: Format) -> tuple[str, ...]:
    """Accumulators shown for ``fmt`` when none are asked for (``fmt.default_accumulators``)."""
    return fmt.default_accumulators


def check_accumulator(name: str) -> str:
    """Canonical accumulator spelling; :class:`ConfigError` for anything the cost model cannot price."""
    acc = name.strip().lower()
    if acc == "fx":
        return acc
    try:
        f = get(acc)
    except Exception:
        raise ConfigError(f"unknown accumulator {name!r}; {ACCUMULATORS_HELP}") from None
    if not f.can_accumulate:
        raise ConfigError(f"accumulator {name!r} is a {f.kind} format; {ACCUMULATORS_HELP}")
    return f.name


def mac_gates(fmt: Format, accumulator: str) -> GateCount:
    """Gates of one ``fmt`` x ``fmt`` MAC into ``accumulator``, split by stage."""
    from hwsim.cost.arith import mac_gates as _gates

    return _gates(fmt.name, fmt.name, accumulator)


def relative_gates_int8(gates: GateCount) -> float:
    """``gates.total`` over the gates of an int8 x int8 MAC with an ``fx`` accumulator."""
    from hwsim.cost.arith import mac_gates as _gates

    return gates.total / _gates(BASELINE[0], BASELINE[0], BASELINE[1]).total


def energy_pj_per_mac(fmt: Format, accumulator: str, target=None) -> float:
    """Arithmetic energy of one MAC in pJ at the target's gate energy (45 nm without a target).

    The gate energy is the cost model's (:func:`hwsim.cost.unit.gate_energy_fj`: the target's
    ``energy_per_gate_fj`` override or the Horowitz calibration scaled to its technology). The
    target's per-MAC instruction/register overhead is not included (it is in the model estimate).
    """
    from hwsim.cost import arith

    if target is None:
        return arith.mac_energy_pj(fmt.name, fmt.name, accumulator, DEFAULT_TECHNOLOGY_NM)
    from hwsim.cost.unit import mac_arith_energy_pj

    return mac_arith_energy_pj(target, fmt.name, fmt.name, accumulator)


def target_rate(fmt: Format, target):
    """(MacRate the target runs ``fmt`` x ``fmt`` on, exact) as the cost model selects it.

    A pair the target lacks runs on the nearest supported pair that represents both operands
    (:func:`hwsim.cost.unit.select_rate`), e.g. int4 on an int8 unit, paying unpacking.
    """
    from hwsim.cost.unit import select_rate

    return select_rate(target.compute.rates, fmt.name, fmt.name)


def macs_per_cycle(fmt: Format, target) -> float | None:
    """MACs per cycle of the whole target (rate x cores) for ``fmt`` x ``fmt``; None without a target.

    For a pair the target lacks this is the rate of the pair it falls back to (see
    :func:`target_rate`; :class:`TargetInfo` ``fallbacks`` names it); unpacking or decoding
    costs of the fallback are in the model estimate, not here.
    """
    if target is None:
        return None
    rate, _ = target_rate(fmt, target)
    return float(rate.macs_per_cycle * target.compute.cores)


def target_info(target, fmts: list[Format]) -> TargetInfo:
    """The target fields the report shows, with the pairs ``fmts`` fall back to."""
    fallbacks, peak = {}, {}
    for f in fmts:
        rate, exact = target_rate(f, target)
        peak[f.name] = macs_per_cycle(f, target) * target.clock_hz
        if not exact:
            fallbacks[f.name] = f"{rate.activation} x {rate.weight}"
    return TargetInfo(name=target.name, technology_nm=target.technology_nm, clock_hz=target.clock_hz,
                      cores=target.compute.cores, peak_macs_per_s=peak, fallbacks=fallbacks)
