"""``hwsim sweep``: hardware x quantization co-design sweep on a local or remote Dask cluster."""

from __future__ import annotations

import argparse
import json
import sys

from hwsim.commands.common import check_output, positive_int
from hwsim.render import si, table


def add_parsers(sub) -> None:
    p = sub.add_parser(
        "sweep", help="co-design sweep: models x hardware points x quantization, rows to Parquet (Dask)",
        description="Evaluate every point of a SPEC (models, targets with varied fields, quantization) and "
                    "write one row per point to Parquet as points finish. Without --cluster a local Dask "
                    "cluster of worker processes runs the sweep; with --cluster an existing scheduler does.")
    p.add_argument("spec", metavar="SPEC.yaml", help="sweep SPEC (README section 'Sweep: hardware x quantization "
                                                     "co-design'; example: examples/codesign/sweep.yaml)")
    p.add_argument("--out", required=True, metavar="OUT.parquet", help="Parquet file of the rows")
    p.add_argument("--cluster", metavar="tcp://HOST:8786", help="address of a running Dask scheduler")
    p.add_argument("--workers", type=positive_int, metavar="N",
                   help="worker processes of the local cluster (default: CPU count)")
    p.add_argument("--batch", type=positive_int, metavar="N", help="points per Dask task (default: automatic)")
    p.add_argument("--resume", action="store_true", help="keep rows already in OUT and compute only the rest")
    p.add_argument("--plot", metavar="FRONT.png", help="draw the Pareto front (needs matplotlib)")
    p.add_argument("--json", action="store_true", help="print a JSON summary (counts and front rows)")
    p.set_defaults(run=run_sweep_cmd)


#: front rows printed per model (the file holds them all)
_SHOWN = 15


class _Bar:
    """Progress on stderr: a bar, points/s and ETA (only when stderr is a terminal or forced)."""

    def __init__(self, enabled: bool):
        self.enabled = enabled

    def __call__(self, done: int, total: int, elapsed: float) -> None:
        if not self.enabled:
            return
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = (total - done) / rate if rate > 0 else float("inf")
        filled = int(30 * done / max(total, 1))
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (30 - filled)}] {done}/{total}  {rate:.1f} points/s  "
                         f"ETA {eta:.0f} s ")
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()


def _cell(value) -> str:
    """A parameter value in the front table: numbers short, long JSON values cut."""
    if isinstance(value, float):
        return f"{value:.4g}"
    text = "-" if value is None else str(value)
    return text if len(text) <= 32 else text[:29] + "..."


def _front_rows(tab, objectives: list[str]) -> list[dict]:
    rows = [r for r in tab.to_pylist() if r["pareto"]]
    return sorted(rows, key=lambda r: (r["model"], *[r[o] for o in objectives]))


def run_sweep_cmd(args: argparse.Namespace) -> int:
    from hwsim.sweep import load_spec, run_sweep

    check_output(args.out, "--out")
    check_output(args.plot, "--plot", plot=True)
    spec = load_spec(args.spec)
    try:
        res = run_sweep(spec, args.out, cluster=args.cluster, workers=args.workers, resume=args.resume,
                        batch_size=args.batch, progress=_Bar(sys.stderr.isatty() and not args.json))
    except KeyboardInterrupt:
        print(f"interrupted: finished rows kept in {args.out} (run again with --resume)", file=sys.stderr)
        return 130
    tab = res.table
    objectives = list(spec.objectives)
    params = res.params
    front = _front_rows(tab, objectives)
    status = tab.column("status").to_pylist()
    counts = {s: status.count(s) for s in ("ok", "infeasible", "error")}
    if args.plot:
        from hwsim.sweep.plot import plot_front

        plot_front(tab, objectives, args.plot)
    if args.json:
        print(json.dumps({"out": str(res.out), "points": tab.num_rows, "computed": res.computed,
                          "skipped": res.skipped, "status": counts, "elapsed_s": res.elapsed_s,
                          "workers": res.workers, "objectives": objectives, "front": front}))
        return 0
    print(f"{tab.num_rows} points in {res.out} ({res.computed} computed on {res.workers} worker(s) in "
          f"{res.elapsed_s:.1f} s, cluster start included; {res.skipped} already present): {counts['ok']} ok, "
          f"{counts['infeasible']} infeasible, {counts['error']} error")
    errors = [r for r in tab.to_pylist() if r["status"] == "error"]
    for r in errors[:3]:
        print(f"error at point {r['point']} ({r['model']}, {r['target']}, {r['quantization']}): {r['message']}")
    print(f"\nPareto front over {', '.join(objectives)} ({len(front)} points, per model):")
    shown = [r for m in dict.fromkeys(r["model"] for r in front)
             for r in [x for x in front if x["model"] == m][:_SHOWN]]
    heads = ["model", "target", *params, "quantization", *objectives]
    print(table(heads, [[r["model"], r["target"], *[_cell(r[p]) for p in params], r["quantization"],
                         *[si(r[o]) for o in objectives]] for r in shown]))
    if len(shown) < len(front):
        print(f"({len(front) - len(shown)} more front rows in {res.out}: the rows with pareto = true)")
    if args.plot:
        print(f"plot written to {args.plot}")
    return 0
