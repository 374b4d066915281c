"""Predicted vs measured: :func:`validate` prices every measurement record on a target.

Error is signed and relative, ``predicted / measured - 1`` (+0.30 = predicted 30% too high). A record
counts as *within* a tolerance when ``|error| <= tolerance``. Energy is compared only where the
target's ``energy_scope`` equals the record's (a board measurement says nothing of core energy).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path

from hwsim.errors import ConfigError
from hwsim.fidelity.records import Measurement, load_measurements
from hwsim.targets import Target, load_target

MODEL_SUFFIXES = (".onnx", ".yaml", ".yml")


@dataclass(frozen=True)
class Row:
    """One record, predicted and measured."""

    id: str
    kind: str
    family: str
    measured_latency_s: float
    predicted_latency_s: float
    measured_energy_j: float | None
    predicted_energy_j: float | None

    @property
    def latency_error(self) -> float:
        return self.predicted_latency_s / self.measured_latency_s - 1.0

    @property
    def energy_error(self) -> float | None:
        if self.measured_energy_j is None or self.predicted_energy_j is None:
            return None
        return self.predicted_energy_j / self.measured_energy_j - 1.0


@dataclass(frozen=True)
class Summary:
    """Agreement of one quantity over a set of rows."""

    n: int
    within_10: float
    within_25: float
    within_tolerance: float | None
    median_error: float
    median_abs_error: float


@dataclass(frozen=True)
class Validation:
    """What :func:`validate` returns."""

    target: str
    rows: tuple[Row, ...]
    unpredicted: tuple[str, ...]
    energy_note: str
    latency: Summary | None
    energy: Summary | None
    latency_tolerance: float | None
    energy_tolerance: float | None
    min_fraction_within: float | None

    @property
    def passed(self) -> bool | None:
        """None without a documented tolerance; else whether latency (and energy, where a tolerance is
        documented and energy was compared) reach ``min_fraction_within``."""
        if self.min_fraction_within is None or self.latency is None:
            return None
        ok = self.latency.within_tolerance >= self.min_fraction_within
        if self.energy is not None and self.energy.within_tolerance is not None:
            ok = ok and self.energy.within_tolerance >= self.min_fraction_within
        return ok

    def to_json(self) -> dict:
        def summ(s):
            return None if s is None else s.__dict__
        return {"target": self.target, "passed": self.passed, "latency": summ(self.latency),
                "energy": summ(self.energy), "latency_tolerance": self.latency_tolerance,
                "energy_tolerance": self.energy_tolerance, "min_fraction_within": self.min_fraction_within,
                "energy_note": self.energy_note, "unpredicted": list(self.unpredicted),
                "records": [{**r.__dict__, "latency_error": r.latency_error, "energy_error": r.energy_error}
                            for r in self.rows]}


def summarize(errors: list[float], tolerance: float | None = None) -> Summary | None:
    """Fractions within 10%, 25% and ``tolerance``, median signed and absolute error; None if empty."""
    if not errors:
        return None
    n = len(errors)

    def frac(t):
        return sum(abs(e) <= t + 1e-12 for e in errors) / n
    return Summary(n=n, within_10=frac(0.10), within_25=frac(0.25),
                   within_tolerance=None if tolerance is None else frac(tolerance),
                   median_error=statistics.median(errors), median_abs_error=statistics.median(map(abs, errors)))


def _model_ref(rec: Measurement, base: Path | None) -> str:
    m = rec.model or ""
    if base is not None and m.lower().endswith(MODEL_SUFFIXES) and not Path(m).is_absolute():
        return str(base / m)
    return m


def predict(rec: Measurement, target: Target, base: Path | None = None):
    """:class:`hwsim.cost.report.CostReport` of a record's workload on ``target``."""
    from hwsim.cost.estimate import estimate

    from hwsim.errors import HwsimError

    ref = _model_ref(rec, base)
    shapes = {k: v for k, v in rec.params.items() if isinstance(v, int)} if ref.lower().endswith(".onnx") else None
    try:
        if rec.formats_from_file:
            return estimate(ref, target, shapes=shapes or None, weights_resident=rec.weights_resident)
        return estimate(ref, target, weights=rec.weights, activations=rec.activations, shapes=shapes or None,
                        weights_resident=rec.weights_resident, scope=rec.scope)
    except HwsimError as exc:  # say which record of which file (a file holds many)
        raise type(exc)(f"measurement {rec.id!r}: {exc}", param=exc.param) from None


def target_measurements(target: Target, where: Path | None) -> list[Path]:
    """Paths of the measurement files a target documents (relative to its folder ``where``)."""
    if target.validation is None:
        raise ConfigError(f"target {target.name!r} documents no measurements (no 'validation:' section); "
                          f"pass a measurement file")
    if where is None:
        from importlib import resources

        where = Path(str(resources.files("hwsim._targets")))
    return [where / m for m in target.validation.measurements]


def validate(target: str | Path | Target, measurements: str | Path | list | tuple,
             records: tuple[Measurement, ...] | None = None) -> Validation:
    """Predict every record of ``measurements`` on ``target`` and compare.

    Parameters
    ----------
    target : str, Path or Target
        Bundled name, YAML path or Target.
    measurements : path or list of paths
        JSONL measurement file(s) (:mod:`hwsim.fidelity.records`).
    records : tuple of Measurement, optional
        Use these records instead of reading the files (the files still set the folder of model paths).

    Returns
    -------
    Validation
        Per-record rows, summaries, and the pass/fail against the target's documented tolerance.
    """
    t = load_target(target)
    paths = [Path(p) for p in (measurements if isinstance(measurements, (list, tuple)) else [measurements])]
    pairs = [(r, p.parent) for p in paths for r in load_measurements(p)] if records is None else \
        [(r, paths[0].parent if paths else None) for r in records]
    rows, unpredicted, scopes = [], [], set()
    for rec, base in pairs:
        if rec.model is None:
            unpredicted.append(rec.id)
            continue
        rep = predict(rec, t, base)
        same = rec.energy_j is not None and t.energy_scope is not None and \
            rec.conditions.energy_scope == t.energy_scope
        if rec.energy_j is not None:
            scopes.add(rec.conditions.energy_scope)
        rows.append(Row(rec.id, rec.kind, rec.family, rec.latency_s, rep.total.latency_s,
                        rec.energy_j if same else None, rep.total.energy_j if same else None))
    note = ""
    if scopes and t.energy_scope not in scopes:
        note = (f"energy not compared: the target's energy covers {t.energy_scope or 'an unstated scope'}, "
                f"the measurements cover {', '.join(sorted(map(str, scopes)))}")
    v = t.validation
    lat_tol = v.latency_tolerance if v else None
    en_tol = v.energy_tolerance if v else None
    en = [r.energy_error for r in rows if r.energy_error is not None]
    return Validation(target=t.name, rows=tuple(rows), unpredicted=tuple(unpredicted), energy_note=note,
                      latency=summarize([r.latency_error for r in rows], lat_tol),
                      energy=summarize(en, en_tol), latency_tolerance=lat_tol, energy_tolerance=en_tol,
                      min_fraction_within=v.min_fraction_within if v else None)
