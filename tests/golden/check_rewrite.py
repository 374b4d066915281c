"""Check a rewrite of the estimate golden files: which fields moved, and that none that should not did.

Usage: ``python tests/golden/check_rewrite.py OLD_DIR NEW_DIR [--frozen f1,f2,...]``: OLD_DIR a copy
of ``tests/golden/estimate`` before ``pytest tests/cost --update-golden``, NEW_DIR after. Prints how
many values of each field moved, per op kind, the total energy and latency ratio per file, and
exits 1 if a frozen field moved (default: the fields a change of activation formats cannot move:
names, op kinds, MACs, executed ops, weight density, weight bytes, layer count).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

FROZEN = "model,target,name,op,macs,executed_ops,weight_density,weight_bytes"


def _walk(a, b, path: str, op, moved: Counter, frozen: set, bad: list) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        if sorted(a) != sorted(b):
            bad.append(f"{path}: keys differ")
        for k in set(a) & set(b):
            _walk(a[k], b[k], f"{path}.{k}", op, moved, frozen, bad)
    elif isinstance(a, list) and isinstance(b, list) and not all(isinstance(x, str) for x in a + b):
        if len(a) != len(b):
            bad.append(f"{path}: length {len(a)} -> {len(b)}")
        for i, (x, y) in enumerate(zip(a, b)):
            _walk(x, y, f"{path}[{i}]", op, moved, frozen, bad)
    elif a != b:
        field = path.rsplit("]", 1)[-1].split(":", 1)[-1].lstrip(".")
        moved[(field.split(".")[0], op or "(total)")] += 1
        if set(path.replace("[", ".").split(".")) & frozen:
            bad.append(f"{path}: {a!r} -> {b!r}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("old", type=Path)
    ap.add_argument("new", type=Path)
    ap.add_argument("--frozen", default=FROZEN)
    args = ap.parse_args(argv)
    frozen, moved, bad = set(args.frozen.split(",")), Counter(), []
    for f in sorted(args.old.glob("*.json")):
        a, b = json.loads(f.read_text()), json.loads((args.new / f.name).read_text())
        _walk({k: v for k, v in a.items() if k != "layers"}, {k: v for k, v in b.items() if k != "layers"},
              f"{f.stem}:", None, moved, frozen, bad)
        if len(a["layers"]) != len(b["layers"]):
            bad.append(f"{f.stem}: {len(a['layers'])} -> {len(b['layers'])} layers")
        for i, (x, y) in enumerate(zip(a["layers"], b["layers"])):
            _walk(x, y, f"{f.stem}.layers[{i}]", x["op"], moved, frozen, bad)
        ta, tb = a["total"], b["total"]
        print(f"{f.stem:30s} energy x{tb['energy_j'] / ta['energy_j']:.3f}  latency x{tb['latency_s'] / ta['latency_s']:.3f}")
    fields = Counter()
    for (field, _), n in moved.items():
        fields[field] += n
    print("moved values per field:", ", ".join(f"{k} {v}" for k, v in sorted(fields.items())))
    print("op kinds with moved values:", ", ".join(sorted({op for _, op in moved})))
    if bad:
        print("FROZEN FIELDS MOVED:", *bad[:40], sep="\n  ")
        return 1
    print("ok: no frozen field moved")
    return 0


if __name__ == "__main__":
    sys.exit(main())
