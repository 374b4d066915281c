"""``hwsim solve``: per-layer formats and pruning under hardware budgets (exact MCKP, verified plan)."""

from __future__ import annotations

import argparse
import json
import re
import sys

from hwsim.commands.common import (check_output, check_shape_inputs, input_values, parse_shape_args, positive_int,
                                   seed_int, write_output)
from hwsim.errors import ConfigError, HwsimError, InfeasibleBudgetError
from hwsim.render import ProgressBar, si, table

_BUDGET = re.compile(r"^\s*([a-z_]+)\s*<=\s*([^\s]+)\s*$")
#: library parameter -> the flag that sets it (library errors name parameters, the CLI names flags)
_FLAGS = {"choices": "--choices", "budgets": "--budget", "name": "--pareto", "points": "--points",
          "metric": "--metric", "calib": "--calib", "samples": "--samples", "shapes": "--shape", "tails": "--tails"}


def add_parsers(sub) -> None:
    p = sub.add_parser(
        "solve", help="mixed-precision and pruning plan that meets hardware budgets",
        description="Pick, per conv/linear layer, a weight format, an activation format and a pruning that "
                    "minimise the summed sensitivity (measured with the bit-accurate simulator, cached) "
                    "under every budget, exactly (MILP). The plan is re-estimated as a whole and budgets "
                    "it misses are tightened; candidate plans are simulated as whole models on the "
                    "calibration samples and the one measured best is returned. Infeasible budgets: exit "
                    "status 2 with the minimum reachable value of each.")
    p.add_argument("model", metavar="MODEL", help="zoo name, model .yaml or .onnx path")
    p.add_argument("--shape", metavar="K=V,...", action="append", help="bind dynamic ONNX dims / override zoo parameters")
    p.add_argument("--target", required=True, metavar="T", help="bundled target name or target .yaml path")
    p.add_argument("--budget", action="append", default=[], metavar="NAME<=VALUE",
                   help="latency_s, energy_j, size_bytes or bops, e.g. --budget energy_j<=0.002 (repeatable)")
    p.add_argument("--choices", metavar="SPEC",
                   help='per-layer options, e.g. "w=int8,int4,int2;a=int8;prune=0,2:4,50%%" '
                        "(default: the format pairs and sparsity the target supports)")
    p.add_argument("--inputs", metavar="IN.npz", help="input arrays by graph input name: an ONNX model takes its "
                   "input shapes and control values (e.g. an If on a sample-rate input) from them")
    p.add_argument("--calib", metavar="DATA.npz", help="calibration inputs by graph input name (+ 'labels'), "
                   "samples first; an ONNX model takes its control values and dynamic dims from them unless "
                   "--inputs gives them (which must then agree); default: seeded synthetic inputs")
    p.add_argument("--samples", type=positive_int, metavar="N", help="calibration samples simulated (default 16 from --calib, 8 synthetic)")
    p.add_argument("--metric", default="output_mse", choices=("output_mse", "task_loss", "proxy"),
                   help="sensitivity: simulated output MSE (default), task loss (needs labels), or the "
                        "no-simulation proxy")
    p.add_argument("--tails", default="exact", choices=("exact", "gain", "cut"),  # = sensitivity_table.TAILS (a test)
                   help="output_mse: run every layer's descendants (exact, default); or estimate: gain runs "
                        "one choice per layer to the outputs and scales the layer's other choices by its "
                        "gain (fewer simulations); cut scales most values from the error at the next cut "
                        "of the graph (see benchmarks/RESULTS.md for how far each was off)")
    p.add_argument("--no-simulate-plans", dest="simulate_plans", action="store_false",
                   help="do not simulate candidate plans as whole models: pick by the summed sensitivity alone "
                        "(faster; the plan's measured error is then not reported)")
    p.add_argument("--cache-dir", metavar="DIR", help="sensitivity cache (default $XDG_CACHE_HOME/hwsim or ~/.cache/hwsim)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    p.add_argument("--pareto", metavar="NAME", help="sweep budget NAME and print the sensitivity-cost front")
    p.add_argument("--points", type=int, default=8, metavar="N", help="points on the --pareto front (default 8)")
    p.add_argument("--plot", metavar="FRONT.png", help="with --pareto: plot the front (needs matplotlib)")
    p.add_argument("--write-config", metavar="PLAN.yaml", help="write the plan as a quant config YAML")
    p.add_argument("--seed", type=seed_int, default=0, help="seed of synthetic weights and inputs")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--verbose", action="store_true",
                   help="print where the time went: load, sensitivity, costs, MILP, re-estimate, simulate plans")
    p.set_defaults(run=run_solve)


def parse_budgets(items: list[str]) -> dict[str, float]:
    """``["energy_j<=0.002", ...]`` -> {"energy_j": 0.002}."""
    out: dict[str, float] = {}
    for item in items:
        m = _BUDGET.match(item)
        if not m:
            raise ConfigError(f"--budget {item!r} must be NAME<=VALUE, e.g. --budget energy_j<=0.002")
        if m.group(1) in out:
            raise ConfigError(f"--budget {m.group(1)} given twice ({item!r} after {m.group(1)}<={out[m.group(1)]:g}); "
                              "keep one --budget per name")
        try:
            out[m.group(1)] = float(m.group(2))
        except ValueError:
            raise ConfigError(f"--budget {item!r}: {m.group(2)!r} is not a number") from None
    return out


def run_solve(args: argparse.Namespace) -> int:
    try:
        return _run_solve(args)
    except HwsimError as exc:
        raise _with_flag(exc) from None


def _with_flag(exc: HwsimError) -> HwsimError:
    """The library error with its parameter's name replaced by the flag that sets it."""
    flag = _FLAGS.get(exc.param or "")
    text = str(exc)
    if flag is None or not text.startswith(exc.param):
        return exc
    return type(exc)(flag + text[len(exc.param):], param=exc.param)


def _run_solve(args: argparse.Namespace) -> int:
    from hwsim.solve import pareto, plan_from, tables
    from hwsim.solve.plan import check_budgets, infeasible_message

    args.started_s = _process_age_s()
    budgets = parse_budgets(args.budget)
    check_budgets(budgets)
    if not budgets and not args.pareto:
        raise ConfigError("give at least one --budget NAME<=VALUE (or --pareto NAME)")
    if args.plot and not args.pareto:
        raise ConfigError("--plot draws the --pareto front; add --pareto NAME")
    check_output(args.plot, "--plot", plot=True)
    check_output(args.write_config, "--write-config")
    check_shape_inputs(args)
    bar = None if args.quiet else ProgressBar("sensitivity")
    try:
        tb = tables(args.model, args.target, args.choices, args.metric, args.calib, args.samples, args.cache_dir,
                    parse_shape_args(args.shape), args.seed, progress=bar, inputs=input_values(args), tails=args.tails)
    finally:
        if bar is not None:
            bar.close()
    if args.pareto:
        return _run_pareto(args, tb, budgets, pareto)
    plan = plan_from(tb, budgets, seed=args.seed, simulate_plans=args.simulate_plans)
    if args.verbose:
        _print_times(tb, [plan], args.started_s)
    if args.json:
        print(json.dumps(plan.to_json()))
    else:
        _print_plan(plan)
    if plan.status == "infeasible":
        raise InfeasibleBudgetError(infeasible_message(plan))
    if args.write_config:
        _write(args.write_config, plan.config().dump())
    if plan.status == "budget_missed":
        print(f"warning: after {plan.rounds} rounds the re-estimated plan still misses a budget (exit status 3)",
              file=sys.stderr)
        return 3
    return 0


def _print_times(tb, plans, started_s: float | None) -> None:
    """The time split of a solve (wall time), on stderr (stdout may carry --json). ``started_s``:
    the process's age when the command began (Python start and imports), None where unknown."""
    t = tb.timings
    milp, est = sum(p.milp_s for p in plans), sum(p.estimate_s for p in plans)
    simulated = sum(p.simulate_s for p in plans)
    parts = [("start and imports", started_s)] if started_s is not None else []
    parts += [("load", t.get("load_s", 0.0)), ("sensitivity", t.get("sensitivity_s", 0.0)),
              ("costs", t.get("costs_s", 0.0)), ("MILP", milp), ("re-estimate", est), ("simulate plans", simulated)]
    total = sum(v for _, v in parts)
    hits = tb.sensitivity.cache_hits
    print("time: " + ", ".join(f"{k} {v:.2f} s" for k, v in parts) + f"; total {total:.2f} s "
          f"({hits} of {tb.sensitivity.values.size} sensitivities from the cache)", file=sys.stderr)


def _process_age_s() -> float | None:
    """Wall seconds since this process started (Linux /proc), or None elsewhere."""
    import os

    try:
        with open("/proc/self/stat") as f:
            start_ticks = int(f.read().rpartition(")")[2].split()[19])  # field 22: starttime
        with open("/proc/uptime") as f:
            uptime_s = float(f.read().split()[0])
        return max(uptime_s - start_ticks / os.sysconf("SC_CLK_TCK"), 0.0)
    except (OSError, ValueError, IndexError):
        return None


def _write(path: str, text: str) -> None:
    def write(p):
        with open(p, "w") as f:
            f.write(text)

    write_output(path, "--write-config", write)


def _print_plan(plan) -> None:
    if plan.layers:
        rows = [(x.name, x.weight_format, x.activation_format, x.pruning, f"{x.sensitivity:.4g}") for x in plan.layers]
        print(table(["layer", "weights", "activations", "pruning", plan.metric], rows, "llllr"))
        print()
    rows = [(k, f"{b.limit:.6g}", "-" if b.value is None else f"{b.value:.6g}",
             "-" if b.predicted is None else f"{b.predicted:.6g}", f"{b.min_reachable:.6g}")
            for k, b in plan.budgets.items()]
    print(table(["budget", "limit", "plan (re-estimated)", "predicted", "min reachable"], rows, "lrrrr"))
    obj = "-" if plan.objective is None else f"{plan.objective:.6g}"
    if plan.measured is not None:
        obj += f" (whole plan simulated: {plan.measured:.6g})"
    extra = ""
    if plan.total:
        extra = f"; latency {plan.total['latency_s']:.4g} s, energy {si(plan.total['energy_j'], 'J')}"
    print(f"\nstatus {plan.status}, summed {plan.metric} {obj}{extra}, {plan.rounds} round(s) of solve + whole-model re-estimate "
          f"in {plan.solve_s:.2f} s")
    for note in plan.notes:
        print(f"note: {note}")


def _run_pareto(args, tb, budgets, pareto) -> int:
    plans = pareto(tb, args.pareto, args.points, budgets, seed=args.seed, simulate_plans=args.simulate_plans)
    if args.verbose:
        _print_times(tb, plans, args.started_s)
    name = args.pareto
    if args.json:
        print(json.dumps({"budget": name, "points": [p.to_json() for p in plans]}))
    else:
        rows = [(f"{p.budgets[name].limit:.6g}", f"{p.budgets[name].value:.6g}", f"{p.objective:.6g}",
                 "-" if p.measured is None else f"{p.measured:.6g}", p.status,
                 f"{p.config().defaults.weights}/{p.config().defaults.activations}",
                 " ".join(f"{x.weight_format}/{x.activation_format}" + ("" if x.pruning == "0" else f"/{x.pruning}")
                          for x in p.layers)[:80]) for p in plans]
        metric = tb.sensitivity.metric
        print(table([f"{name} limit", f"{name} plan", f"summed {metric}", f"simulated {metric}", "status",
                     "other tensors", "layers"], rows, "rrrrlll"))
        for note in tb.sensitivity.notes + tb.costs.notes:
            print(f"note: {note}")
    if args.plot:
        plot_front(plans, name, tb.sensitivity.metric, args.plot)
    if args.write_config and plans:
        _write(args.write_config, plans[-1].config().dump())
    return 0


def plot_front(plans, name: str, metric: str, path: str) -> None:
    """Sensitivity against the re-estimated budget value, one marker per plan."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ConfigError("--plot needs matplotlib: pip install 'hwsim[plot]'") from None
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot([p.budgets[name].value for p in plans], [p.objective for p in plans], "o-")
    ax.set_xlabel(name)
    ax.set_ylabel(f"summed {metric}")
    ax.set_yscale("symlog", linthresh=1e-9)
    ax.set_title("sensitivity-cost front (re-estimated plans)")
    fig.tight_layout()
    try:
        write_output(path, "--plot", lambda p: fig.savefig(p, dpi=120))
    finally:
        plt.close(fig)
