"""The README fidelity table: one row per bundled target (validated against what, n, agreement)."""

from __future__ import annotations

from hwsim.fidelity.validate import target_measurements, validate
from hwsim.targets import bundled_targets

BEGIN = "<!-- fidelity-table:begin (regenerate: python benchmarks/fidelity_table.py) -->"
END = "<!-- fidelity-table:end -->"


def fidelity_rows() -> list[tuple[str, ...]]:
    """(target, validated against, n, latency within +-25%, median latency error, energy within +-25%,
    median energy error) per bundled target; 'uncalibrated' where it documents no measurements."""
    rows = []
    for name, t in bundled_targets().items():
        if t.validation is None:
            rows.append((name, "uncalibrated", "0", "-", "-", "-", "-"))
            continue
        v = validate(t, target_measurements(t, None))
        lat, en = v.latency, v.energy
        rows.append((name, t.validation.source.split(" (")[0], str(lat.n),
                     f"{100 * lat.within_25:.0f}%", f"{100 * lat.median_error:+.1f}%",
                     "-" if en is None else f"{100 * en.within_25:.0f}%",
                     "-" if en is None else f"{100 * en.median_error:+.1f}%"))
    return rows


def fidelity_markdown() -> str:
    """The table as Markdown, between the README markers."""
    head = ("| target | validated against | n | latency within +-25% | median latency error | "
            "energy within +-25% | median energy error |\n|---|---|---|---|---|---|---|\n")
    body = "".join("| " + " | ".join(r) + " |\n" for r in fidelity_rows())
    return f"{BEGIN}\n{head}{body}{END}"
