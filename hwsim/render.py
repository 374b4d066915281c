"""Plain-text tables and number formatting shared by the CLI commands."""

from __future__ import annotations

from typing import Sequence


def si(value: float, unit: str = "", digits: int = 3) -> str:
    """1234567 -> '1.23 M' (SI prefixes)."""
    for factor, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.{digits}g} {prefix}{unit}".rstrip()
    return f"{value:.{digits}g} {unit}".rstrip()


def table(headers: Sequence[str], rows: Sequence[Sequence[object]], align: str | None = None) -> str:
    """A fixed-width table; ``align`` is a string of 'l'/'r' per column (default: text left, numbers right)."""
    cells = [[str(c) for c in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    if align is None:
        align = "".join("r" if rows and isinstance(rows[0][i], (int, float)) else "l" for i in range(len(headers)))
    def fmt(r):
        return "  ".join(c.rjust(w) if a == "r" else c.ljust(w) for c, w, a in zip(r, widths, align)).rstrip()
    lines = [fmt(cells[0]), "  ".join("-" * w for w in widths)]
    lines += [fmt(r) for r in cells[1:]]
    return "\n".join(lines)


def shape_str(shape: Sequence[int]) -> str:
    return "x".join(str(d) for d in shape) if shape else "scalar"


class ProgressBar:
    """A one-line ``\\r`` progress bar on a text stream, fed by a library progress callback.

    ``bar(done, total, what)`` redraws; :meth:`close` ends the line with the count and time.
    """

    def __init__(self, label: str, stream=None, width: int = 24):
        import sys
        import time

        self.label, self.stream, self.width = label, stream or sys.stderr, width
        self.done, self._clock, self.t0 = 0, time.perf_counter, time.perf_counter()

    def __call__(self, done: int, total: int, what: str = "") -> None:
        self.done = done
        fill = int(self.width * done / max(total, 1))
        bar = "#" * fill + "." * (self.width - fill)
        self.stream.write(f"\r{self.label} [{bar}] {done}/{total} {what[:40]:<40}")
        self.stream.flush()

    def close(self) -> None:
        if self.done:
            dt = self._clock() - self.t0
            self.stream.write(f"\r{self.label}: {self.done} in {dt:.1f} s" + " " * 60 + "\n")
            self.stream.flush()
