"""The full comparison behind ``hwsim compare-formats``: :func:`compare_formats`."""

from __future__ import annotations

from typing import Iterable

from hwsim.compare import hardware
from hwsim.compare.accuracy import DEFAULT_NUS, crossover, distribution_sqnr
from hwsim.compare.distributions import STANDARD
from hwsim.compare.results import Comparison, FormatRow
from hwsim.errors import ConfigError
from hwsim.formats import Format, get

#: Formats compared when none are given.
DEFAULT_FORMATS = ("int8", "fp8_e4m3fn", "fp8_e5m2", "int4", "fp4_e2m1fn", "mxfp4_e2m1")


def parse_formats(names: str | Iterable[str | Format] | None) -> list[Format]:
    """Format names (a comma-separated string or a list) -> distinct Formats, in the given order.

    Raises
    ------
    UnknownFormatError
        For a name :func:`hwsim.formats.get` cannot parse; the message lists the valid spellings.
    """
    if names is None:
        names = DEFAULT_FORMATS
    if isinstance(names, str):
        names = [n for n in (p.strip() for p in names.split(",")) if n]
    out: list[Format] = []
    for n in names:
        f = get(n)
        if f not in out:
            out.append(f)
    if not out:
        raise ConfigError("formats: none given; pass e.g. int8,fp8_e4m3fn", param="formats")
    return out


def parse_accumulators(names: str | Iterable[str] | None) -> list[str] | None:
    """Accumulator names -> canonical spellings; None keeps the per-format defaults."""
    if names is None:
        return None
    if isinstance(names, str):
        names = [n for n in (p.strip() for p in names.split(",")) if n]
    out = list(dict.fromkeys(hardware.check_accumulator(n) for n in names))
    if not out:
        raise ConfigError("accumulators: none given; pass e.g. fx,fp16,fp32", param="accumulators")
    return out


def format_sqnr(fmt: Format, n: int, seed: int) -> dict[str, float | None]:
    """SQNR (dB) of ``fmt`` on each standard distribution; None where the format cannot quantize."""
    out: dict[str, float | None] = {}
    for d in STANDARD:
        try:
            out[d] = distribution_sqnr(fmt, d, n, seed)
        except NotImplementedError:
            out[d] = None
    return out


def _rows(fmts: list[Format], accumulators: list[str] | None, target, n: int, seed: int) -> list[FormatRow]:
    rows = []
    for f in fmts:
        sq = format_sqnr(f, n, seed)
        for acc in accumulators or hardware.default_accumulators(f):
            gates = hardware.mac_gates(f, acc)
            mpc = hardware.macs_per_cycle(f, target)
            rows.append(FormatRow(
                format=f.name, accumulator=acc, gates=gates,
                relative_gates_int8=hardware.relative_gates_int8(gates),
                energy_pj_per_mac=hardware.energy_pj_per_mac(f, acc, target),
                macs_per_cycle=mpc,
                sqnr_db=sq))
    return rows


def compare_formats(formats=None, accumulators=None, target=None, model=None, *, samples: int = 65536,
                    seed: int = 0, crossover_formats: tuple[str, str] = ("int8", "fp8_e4m3fn"),
                    nus: tuple[float, ...] = DEFAULT_NUS, shape: dict[str, int] | None = None,
                    max_elements: int = 16384) -> Comparison:
    """Compare number formats on hardware cost and accuracy.

    Parameters
    ----------
    formats : str or list, optional
        Format names (default :data:`DEFAULT_FORMATS`); generic ``fpN_eXmY`` names work.
    accumulators : str or list, optional
        Accumulators applied to every format; default per format (see
        :func:`hwsim.compare.hardware.default_accumulators`).
    target : str, Target or None
        Bundled target name, YAML path or a loaded Target: adds MACs/cycle, peak MAC/s and the
        target's technology to the energy; with ``model``, the model's latency and energy.
    model : str, optional
        Zoo name, model YAML or ONNX file: adds per-layer SQNR of weights and activations.
    samples, seed : int
        Samples per distribution and their seed.
    crossover_formats : (str, str)
        Integer and float format of the Student-t crossover sweep.
    nus : tuple of float
        Student-t degrees of freedom swept.
    shape : dict, optional
        Model parameter overrides (``--shape``).
    max_elements : int
        Model tensors with more values are subsampled (seeded, whole rows) before the scale search.

    Returns
    -------
    Comparison
    """
    fmts = parse_formats(formats)
    accs = parse_accumulators(accumulators)
    tgt = _load_target(target)
    rows = _rows(fmts, accs, tgt, samples, seed)
    cross = crossover(crossover_formats[0], crossover_formats[1], nus, samples, seed)
    result = dict(rows=rows, crossover=cross, target=None if tgt is None else hardware.target_info(tgt, fmts))
    if model is not None:
        from hwsim.compare.model import compare_model

        result["model"] = compare_model(model, fmts, tgt, shape=shape, seed=seed,
                                        max_elements=max_elements)
    return Comparison(**result)


def _load_target(target):
    if target is None or not isinstance(target, str):
        return target
    from hwsim.targets import load_target

    return load_target(target)
