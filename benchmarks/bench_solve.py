"""Solver speed: exact MCKP at 300 layers x 20 choices x 3 budgets, and llama2-7b end to end.

1. MCKP: seeded instances shaped like real tables (choices = 5 weight widths x 2 activation
   widths x 2 densities; energy, latency and size grow with bits and density; sensitivity falls
   as 4^-bits, times a per-layer scale and measurement noise); 12 seeds, every budget at 20%, 30%,
   50% and 80% of the way from the cheapest to the dearest plan. Solved by ``mckp`` (method
   "core") and, as the baseline in the same run, by the reference MILP (method "milp": the whole
   problem through scipy.optimize.milp); both must reach the same optimum (HiGHS, mip_rel_gap 0).
2. llama2-7b (225 linear layers incl. lm_head) on h100-sxm with its 10 default choices, proxy
   metric, three budgets: model name -> verified plan (after imports), against the baseline
   of pricing choices with one whole-model estimate each.
3. Cold solve (empty sensitivity cache, 8 synthetic samples, the target's default choices,
   output_mse): resnet18 on int8-npu and MiniLM-L6 at sequence 128, through ``tables`` +
   ``plan_from`` (what ``hwsim solve`` runs after parsing), split into load, sensitivity, costs,
   MILP, re-estimate and simulating the candidate plans whole. Baseline in the same process
   (``cold-baseline``): every layer's descendants run in the simulator instead of float32
   arithmetic; the largest relative
   difference of the two tables and whether they give the same plan are printed. Wall time and
   process CPU time are both printed: on a shared machine CPU time is the steadier one. So are
   the kernels numba compiled during the solve (:class:`NumbaCompiles`): none in a warm run; for
   the first run after installing, point ``NUMBA_CACHE_DIR`` at an empty directory.

4. ``gain`` / ``cut``: an estimate (``tails="gain"``, :mod:`hwsim.solve.layer_gain`; ``tails="cut"``,
   :mod:`hwsim.solve.cut_gain`) against the exact table on the same models (``mobilenet_v2`` too
   when named): cold time of the estimate's tables (wall, CPU, load average), the ratio of every
   value to the exact one (for ``gain`` per choice too), and the
   plans at 24 energy budgets from the minimum reachable to the all-w8a8 energy, solved on each
   table by ``plan_from`` (candidate plans simulated whole by PlanMeter): identical or not, and
   the estimate's plan's measured output MSE over the exact plan's. The exact table is read from
   ``--exact=DIR`` (as ``cold --save=DIR`` writes) when it holds the model, else measured.

5. ``plans``: simulating the candidate plans whole (:class:`hwsim.solve.verify.PlanMeter`), on
   the cold-solve models: the plans ``plan_from`` simulates at ``energy_j <= 1 J`` (one per
   activation format of the tensors no layer chooses), timed as ``plan_from`` runs them
   (``PlanMeter.errors``) against the baseline in the same process, the same configs simulated
   one after the other with BLAS's own threads, each preparing its own weights (as before the
   fifth session); twice each, alternating; then at 4 energy budgets from the minimum reachable
   to 1 J, every plan simulated is measured again as the baseline does. The values must be
   identical. Sensitivities are cached in ``--cache=DIR`` when given (they are not timed).

Run: ``python benchmarks/bench_solve.py [mckp] [llama] [cold] [cold-baseline] [gain] [cut] [plans] [resnet18]
[minilm-l6] [mobilenet_v2] [--save=DIR] [--against=DIR] [--exact=DIR] [--tails=gain]`` (naming models limits the
cold solves to them; ``--tails`` the cold solves' tails; ``--save`` writes each
cold table to DIR, ``--against`` compares the cold tables with those saved in DIR by another version:
largest relative difference and the plans the MCKP picks at 25 energy budgets).
"""

from __future__ import annotations

import time

import numpy as np


def instance(layers: int = 300, seed: int = 0, tightness: float = 0.3):
    rng = np.random.default_rng(seed)
    wb, ab, dens = np.array([8, 6, 4, 3, 2]), np.array([8, 4]), np.array([1.0, 0.5])
    W, A, D = (a.ravel() for a in np.meshgrid(wb, ab, dens, indexing="ij"))
    macs = np.exp(rng.uniform(np.log(1e5), np.log(1e9), layers))[:, None]
    params = macs / np.exp(rng.uniform(0, np.log(3000), layers))[:, None]
    energy = macs * W * A * D * 3e-15 + params * W * D / 8 * 20e-12 + macs * A / 8 * 1e-12
    latency = np.maximum(macs * W * A * D / (64 * 64 * 1e9), params * W * D / 8 / 50e9) + 1e-6
    size = params * W * D / 8
    sens = np.exp(rng.normal(0, 1.5, layers))[:, None]
    noise = rng.lognormal(0, 0.3, (layers, W.size))
    values = sens * (4.0 ** -W + 4.0 ** -A + (1 - D) * 0.05 * rng.uniform(0.2, 5, (layers, 1))) * noise
    costs = {"energy_j": energy, "latency_s": latency, "size_bytes": size}
    budgets = {k: a.min(1).sum() + tightness * (a.max(1).sum() - a.min(1).sum()) for k, a in costs.items()}
    return values, costs, budgets


def bench_mckp(seeds=range(12), tightness=(0.2, 0.3, 0.5, 0.8)) -> None:
    from hwsim.solve import mckp

    print("MCKP 300 layers x 20 choices x 3 budgets (energy_j, latency_s, size_bytes), to optimality")
    print(f"{'tight':>5} {'seed':>4} {'core s':>7} {'milp s':>7} {'ratio':>6} {'kept':>5}  objective")
    worst = {}
    for frac in tightness:
        for seed in seeds:
            v, c, b = instance(seed=seed, tightness=frac)
            t = time.perf_counter()
            r = mckp(v, c, b)
            fast = time.perf_counter() - t
            t = time.perf_counter()
            base = mckp(v, c, b, method="milp")
            slow = time.perf_counter() - t
            assert r.status == base.status == "optimal"
            assert abs(r.objective - base.objective) <= 1e-9 * abs(base.objective)
            worst[frac] = max(worst.get(frac, (0, 0)), (fast, slow))
            print(f"{frac:>5} {seed:>4} {fast:>7.3f} {slow:>7.3f} {slow / fast:>6.2f} {r.kept_choices:>5}  {r.objective:.9g}")
    for frac, (fast, slow) in worst.items():
        print(f"tightness {frac}: slowest core {fast:.3f} s (milp on that seed {slow:.3f} s)")


def bench_llama() -> None:
    from hwsim.cost import estimate
    from hwsim.graph.zoo import load_model
    from hwsim.solve import solve, target_choices
    from hwsim.solve.configs import uniform_config
    from hwsim.solve.layers import solver_layers
    from hwsim.targets import load_target

    ref = estimate("llama2-7b", "h100-sxm", "fp8_e4m3fn", "fp8_e4m3fn").total
    budgets = {"energy_j": 1.1 * ref.energy_j, "latency_s": 1.1 * ref.latency_s, "size_bytes": 1.2 * ref.weight_bytes}
    first = solve("llama2-7b", "h100-sxm", budgets, metric="proxy")
    if first.status == "infeasible":  # e.g. tensors no layer chooses priced at their most precise format
        print("\nbudgets at 1.1x uniform fp8 are infeasible (min reachable "
              f"{ {k: f'{b.min_reachable:.4g}' for k, b in first.budgets.items()} }); using max(that, 1.1x min reachable)")
        budgets = {k: max(v, 1.1 * first.budgets[k].min_reachable) for k, v in budgets.items()}
    print("\nllama2-7b on h100-sxm, 10 default choices, proxy metric, budgets", {k: f"{v:.4g}" for k, v in budgets.items()})
    times = []
    for _ in range(3):
        t = time.perf_counter()
        plan = solve("llama2-7b", "h100-sxm", budgets, metric="proxy")
        times.append(time.perf_counter() - t)
    ok = all(b.value is not None and b.value <= b.limit for b in plan.budgets.values())
    print(f"end to end (load, proxy, costs, MILP, re-estimate): best {min(times):.2f} s, runs "
          f"{', '.join(f'{x:.2f}' for x in times)}; {len(plan.layers)} layers, status {plan.status}, "
          f"{plan.rounds} round(s), budgets met: {ok}")
    g = load_model("llama2-7b")
    layers, chs = solver_layers(g), target_choices(load_target("h100-sxm"))
    t = time.perf_counter()
    for ch in chs:
        estimate(g, "h100-sxm", config=uniform_config(g, layers, ch))
    naive = time.perf_counter() - t
    t = time.perf_counter()
    from hwsim.solve.costs import cost_table

    cost_table(g, load_target("h100-sxm"), chs)
    fast = time.perf_counter() - t
    print(f"cost table: stand-in {fast:.2f} s vs one whole-model estimate per choice {naive:.2f} s "
          f"(x{naive / fast:.1f})")


COLD = (("resnet18", {}, "int8-npu"), ("minilm-l6", {"sequence": 128}, "int8-npu"))


def simulator_tails(on: bool):
    """Baseline switch: run every layer's descendants in the simulator (float64 ops, outputs
    rounded to float32) instead of the float32 shortcut (``hwsim.solve.tail.float32_outputs``)."""
    from hwsim.solve import output_error, tail

    output_error.plain_float = (lambda graph: False) if on else tail.plain_float


def _clock():
    return time.perf_counter(), time.process_time()


class NumbaCompiles:
    """Kernels numba compiled (not loaded from its on-disk cache) while the ``with`` block ran,
    and the thread CPU seconds their compiles took (nested compiles counted in their caller's).
    A "warm" run that compiles something is not warm: e.g. a kernel's threaded twin
    (:func:`hwsim.kernels.workqueue.pick`) first chosen under another load."""

    def __init__(self):
        self.names, self.cpu_s, self._stack = [], 0.0, []

    def __enter__(self):
        from numba.core import event

        class _Listener(event.Listener):
            def on_start(_, ev):
                self._stack.append(time.thread_time())

            def on_end(_, ev):
                t0 = self._stack.pop()
                if not self._stack:
                    self.cpu_s += time.thread_time() - t0
                    self.names.append(getattr(ev.data["dispatcher"], "__name__", "?"))

        self._listener = _Listener()
        event.register("numba:compile", self._listener)
        return self

    def __exit__(self, *exc):
        from numba.core import event

        event.unregister("numba:compile", self._listener)

    def __str__(self) -> str:
        return (f"numba compiled {len(self.names)} kernels ({self.cpu_s:.1f} s thread CPU)"
                + (f": {', '.join(sorted(set(self.names)))}" if self.names else ""))


def same_plans(tb, other: np.ndarray, points: int = 25) -> tuple[int, int]:
    """(budgets where the MCKP picks the same choices on ``tb``'s sensitivity table and on
    ``other``, budgets tried): energy limits spaced from the minimum reachable to the energy of
    the plan of least summed value (``tb``'s cost table)."""
    from hwsim.solve import mckp

    energy, values = tb.costs.tables["energy_j"], tb.sensitivity.values
    usable = np.isfinite(energy) & np.isfinite(values)
    lo = np.where(usable, energy, np.inf).min(axis=1).sum()
    hi = energy[np.arange(len(energy)), np.where(usable, values, np.inf).argmin(axis=1)].sum()
    same = 0
    for limit in np.linspace(lo * 1.0005, max(hi, lo * 1.001), points):
        a, b = (mckp(v, {"energy_j": energy}, {"energy_j": float(limit)}) for v in (values, other))
        same += a.status == b.status and (a.status != "optimal" or np.array_equal(a.choice, b.choice))
    return same, points


def bench_cold(baseline: bool = True, samples: int = 8, models: tuple = (), save: str | None = None,
               against: str | None = None, tails: str = "exact") -> None:
    """``tails``: as :func:`hwsim.solve.tables` (``--tails=gain``: the estimate);
    ``save``: a directory to write each model's sensitivity table to (``MODEL.npy``);
    ``against``: a directory of tables saved so by another version, compared with this one's
    (largest relative difference; plans at 25 energy budgets, :func:`same_plans`)."""
    import os
    import tempfile

    from hwsim.solve import plan_from, tables

    print(f"\ncold solve: empty cache, {samples} synthetic samples, default choices, output_mse, energy_j <= 1 J, "
          f"tails={tails}; load average {os.getloadavg()[0]:.2f}")
    import fp_scaling

    print(fp_scaling.describe())  # this machine's speed moves with it (benchmarks/fp_scaling.py)
    for model, shapes, target in COLD:
        if models and model not in models:
            continue
        w0, c0 = _clock()
        with NumbaCompiles() as compiles:
            with tempfile.TemporaryDirectory() as cache:
                tb = tables(model, target, None, "output_mse", None, samples, cache, dict(shapes), tails=tails)
            _, cp = _clock()
            plan = plan_from(tb, {"energy_j": 1.0})
        w1, c1 = _clock()
        t = tb.timings
        print(f"{model} on {target}: {w1 - w0:.1f} s wall, {c1 - c0:.1f} s CPU of which plan_from {c1 - cp:.1f} s "
              f"(MILP, re-estimate, simulate plans) (load {t['load_s']:.1f}, "
              f"sensitivity {t['sensitivity_s']:.1f}, costs {t['costs_s']:.1f}, MILP {plan.milp_s:.2f}, "
              f"re-estimate {plan.estimate_s:.2f}, simulate plans {plan.simulate_s:.2f} s wall; whole plan "
              f"{plan.measured:.4g}, summed {plan.objective:.4g}); {tb.sensitivity.values.shape[0]} layers x "
              f"{tb.sensitivity.values.shape[1]} choices")
        print(f"  {compiles}")
        if save:
            os.makedirs(save, exist_ok=True)
            np.save(os.path.join(save, f"{model}.npy"), tb.sensitivity.values)
        if against:
            old = np.load(os.path.join(against, f"{model}.npy"))
            rel = float(np.max(np.abs(old - tb.sensitivity.values) / np.maximum(np.abs(old), 1e-300)))
            print(f"  against {against}: values agree to {rel:.1e} relative (median "
                  f"{np.median(np.abs(old - tb.sensitivity.values) / np.maximum(np.abs(old), 1e-300)):.1e}); "
                  f"same plan at {'%d of %d' % same_plans(tb, old)} energy budgets")
        if not baseline:
            continue
        simulator_tails(True)
        try:
            w0, c0 = _clock()
            with tempfile.TemporaryDirectory() as cache:
                tb_old = tables(model, target, None, "output_mse", None, samples, cache, dict(shapes))
            w1, c1 = _clock()
        finally:
            simulator_tails(False)
        old, new = tb_old.sensitivity.values, tb.sensitivity.values
        rel = float(np.max(np.abs(old - new) / np.maximum(np.abs(old), 1e-300)))
        same = [(x.weight_format, x.activation_format, x.pruning) for x in plan.layers] == [
            (x.weight_format, x.activation_format, x.pruning) for x in plan_from(tb_old, {"energy_j": 1.0}).layers]
        print(f"  baseline (descendants in the simulator): {w1 - w0:.1f} s wall, {c1 - c0:.1f} s CPU, sensitivity "
              f"{tb_old.timings['sensitivity_s']:.1f} s wall; values agree to {rel:.1e} relative; same plan: {same}")


EXTRA = (("mobilenet_v2", {}, "int8-npu"),)  # a third model for the estimates' checks (not a cold-solve goal)


def bench_estimate(tails: str, models: tuple = (), samples: int = 8, points: int = 24, cache: str | None = None,
                   exact_dir: str | None = None) -> None:
    """An estimate (``tails`` "gain" or "cut") against the exact table: cold time of the estimate,
    ratios of the values, the probe choices tried on the gain table, and the plans at ``points``
    energy budgets from the minimum reachable to the all-8-bit plan's energy, each solved on
    both tables as ``plan_from`` does (whole plans simulated, :class:`hwsim.solve.verify.PlanMeter`).
    The exact table is read from ``exact_dir`` (``MODEL.npy``, as ``cold --save`` writes) when
    it holds the model, else measured (cached in ``cache`` when given)."""
    import os
    import tempfile
    from dataclasses import replace

    from hwsim.solve import tables

    print(f"\ntails={tails} against tails=exact: {samples} synthetic samples, default choices, output_mse")
    for model, shapes, target in COLD + EXTRA:
        if (models and model not in models) or (not models and (model, shapes, target) in EXTRA):
            continue
        load = os.getloadavg()[0]
        w0, c0 = _clock()
        with tempfile.TemporaryDirectory() as tmp:
            est = tables(model, target, None, "output_mse", None, samples, tmp, dict(shapes), tails=tails)
        w1, c1 = _clock()
        t = est.timings
        print(f"{model} tails={tails} cold tables: {w1 - w0:.1f} s wall, {c1 - c0:.1f} s CPU (load {t['load_s']:.1f}, "
              f"sensitivity {t['sensitivity_s']:.1f}, costs {t['costs_s']:.1f} s wall); load average "
              f"{load:.1f} before, {os.getloadavg()[0]:.1f} after")
        saved = os.path.join(exact_dir, f"{model}.npy") if exact_dir else None
        if saved and os.path.exists(saved):
            ex = np.load(saved)
            print(f"  exact table read from {saved}")
        else:
            w0, c0 = _clock()
            with tempfile.TemporaryDirectory() as tmp:
                ex = tables(model, target, None, "output_mse", None, samples, cache or tmp,
                            dict(shapes)).sensitivity.values
            w1, c1 = _clock()
            print(f"  exact table measured: {w1 - w0:.1f} s wall, {c1 - c0:.1f} s CPU")
        _ratios(est.sensitivity.values, ex, tails)
        if tails == "gain":
            for j, lab in enumerate(c.label for c in est.sensitivity.choices):
                _ratios(est.sensitivity.values[:, [j]], ex[:, [j]], f"column {lab}")
        _plans_compared(est, replace(est, sensitivity=replace(est.sensitivity, values=ex)), tails, points)


def _ratios(est: np.ndarray, ex: np.ndarray, label: str) -> None:
    ok = np.isfinite(ex) & (ex > 0)
    r = est[ok] / ex[ok]
    print(f"  {label} / exact per value: median {np.median(r):.3f}, 10-90% {np.quantile(r, 0.1):.3f}-"
          f"{np.quantile(r, 0.9):.3f}, min {r.min():.3f}, max {r.max():.3f}; within 1e-3 of exact: "
          f"{int(np.sum(np.abs(r - 1) < 1e-3))} of {r.size}; estimated 0 where exact is not: "
          f"{int(np.sum(est[ok] == 0))}; exact 0: {int(np.sum(ex == 0))}")


def _plans_compared(est, exact_tb, label: str, points: int) -> None:
    """Plans at ``points`` energy limits from just above the minimum reachable to the energy of
    every layer at w8a8 (with the shared tensors' base), solved on each table by ``plan_from``
    (candidate plans simulated whole), and their measured errors."""
    from hwsim.solve import plan_from

    energy, base = est.costs.tables["energy_j"], est.costs.base["energy_j"]
    w8a8 = [c.label for c in est.sensitivity.choices].index("w=int8,a=int8")
    lo = plan_from(est, {"energy_j": 0.0}, simulate_plans=False).budgets["energy_j"].min_reachable
    hi = base + energy[:, w8a8].sum()
    print(f"  plans at {points} energy_j limits {lo:.4g}-{hi:.4g} J (min reachable to all w8a8):")
    print(f"  {'energy_j':>10} {'exact plan':>11} {label + ' plan':>11} {'ratio':>7} {'summed':>7} same")
    ratios, summed, same = [], [], 0
    for limit in np.linspace(lo * 1.0005, max(hi, lo * 1.001), points):
        a, b = (plan_from(tb, {"energy_j": float(limit)}) for tb in (exact_tb, est))
        if a.status == "infeasible" or b.status == "infeasible":
            print(f"  {limit:>10.4g} infeasible ({a.status}, {b.status})")
            continue
        eq = a.config() == b.config()
        same += eq
        ratios.append(b.measured / a.measured)
        summed.append(_summed(exact_tb, b) / _summed(exact_tb, a))
        print(f"  {limit:>10.4g} {a.measured:>11.4g} {b.measured:>11.4g} {ratios[-1]:>7.3f} {summed[-1]:>7.4f} {eq}",
              flush=True)
    r, t = np.array(ratios), np.array(summed)
    print(f"  {label} plan / exact plan measured: median {np.median(r):.3f}, worst {r.max():.3f}, best "
          f"{r.min():.3f}; identical plans {same} of {len(r)}; summed exact values (column 'summed') worst "
          f"{t.max():.4f}, within 2% at {int(np.sum(t <= 1.02))} of {len(t)}")


def _summed(exact_tb, plan) -> float:
    """The plan's summed sensitivity on the exact table (the objective the exact metric minimises)."""
    sens = exact_tb.sensitivity
    col = {(c.weight_format, c.activation_format, c.pruning.label): j for j, c in enumerate(sens.choices)}
    return float(sum(sens.values[i, col[lay.weight_format, lay.activation_format, lay.pruning]]
                     for i, lay in enumerate(plan.layers)))


def bench_plans(models: tuple = (), samples: int = 8, cache: str | None = None, reps: int = 2,
                budgets: int = 4) -> None:
    import dataclasses
    import tempfile

    from hwsim.solve import plan_from, tables, verify

    print(f"\nsimulating candidate plans whole: {samples} synthetic samples, default choices, energy_j <= 1 J")
    for model, shapes, target in COLD:
        if models and model not in models:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            tb = tables(model, target, None, "output_mse", None, samples, cache or tmp, dict(shapes))
        meter = tb.meter
        meter.reference()  # computed during a cold sensitivity phase; not timed here
        asked = []
        errors = meter.errors
        meter.errors = lambda configs, scope: (asked.append((configs, scope)), errors(configs, scope))[1]
        plan = plan_from(tb, {"energy_j": 1.0})
        del meter.errors
        configs, scope = asked[0]
        graphs = [verify.apply_config(meter.graph, c, target_scope=scope) for c in configs]
        shared = meter._float()
        alone = dataclasses.replace(shared, prepared=None)  # the baseline prepares each run's own weights
        for rep in range(reps):
            w0, c0 = _clock()
            old = [meter._simulate(g, alone) for g in graphs]  # baseline: one by one, BLAS threads
            w1, c1 = _clock()
            meter._errors.clear()
            shared.prepared.clear()
            new = meter.errors(configs, scope)
            w2, c2 = _clock()
            print(f"{model}: {len(configs)} plans ({', '.join(c.defaults.activations for c in configs)}): "
                  f"baseline {w1 - w0:.2f} s wall {c1 - c0:.2f} s CPU, now {w2 - w1:.2f} s wall {c2 - c1:.2f} s "
                  f"CPU (x{(w1 - w0) / (w2 - w1):.2f} wall); values {new}, identical: {new == old}; "
                  f"chosen {plan.config().defaults.activations}, measured {plan.measured!r}")
        _plans_at_budgets(tb, alone, budgets)


def _plans_at_budgets(tb, alone, budgets: int) -> None:
    """At ``budgets`` energy limits from just above the minimum reachable to 1 J: every plan
    ``plan_from`` simulates, measured again one by one as the baseline does (values identical?),
    and the plan chosen."""
    from hwsim.solve import plan_from, verify

    meter, errors = tb.meter, tb.meter.errors
    lo = plan_from(tb, {"energy_j": 0.0}, simulate_plans=False).budgets["energy_j"].min_reachable
    for limit in np.geomspace(lo * 1.02, 1.0, budgets):
        asked = []
        meter.errors = lambda configs, scope: (asked.append((configs, scope)), errors(configs, scope))[1]
        plan = plan_from(tb, {"energy_j": float(limit)})
        del meter.errors
        same = all(meter.errors(cs, scope) == [meter._simulate(verify.apply_config(meter.graph, c, target_scope=scope),
                                                                alone) for c in cs] for cs, scope in asked)
        print(f"  energy_j <= {limit:.4g}: {sum(len(cs) for cs, _ in asked)} plans simulated, values identical to "
              f"the baseline's: {same}; chosen {plan.config().defaults.activations if plan.quant_config else '-'}, "
              f"measured {plan.measured!r}")


if __name__ == "__main__":
    import sys

    parts = sys.argv[1:] or ["mckp", "llama", "cold-baseline"]
    if "mckp" in parts:
        bench_mckp()
    if "llama" in parts:
        bench_llama()
    for est in ("gain", "cut"):
        if est in parts:
            bench_estimate(est, models=tuple(p for p in parts if p in {m for m, _, _ in COLD + EXTRA}),
                           cache=next((p.split("=", 1)[1] for p in parts if p.startswith("--cache=")), None),
                           exact_dir=next((p.split("=", 1)[1] for p in parts if p.startswith("--exact=")), None))
    if "plans" in parts:
        bench_plans(models=tuple(p for p in parts if p in {m for m, _, _ in COLD}),
                    cache=next((p.split("=", 1)[1] for p in parts if p.startswith("--cache=")), None))
    if "cold" in parts or "cold-baseline" in parts:
        bench_cold(baseline="cold-baseline" in parts, models=tuple(p for p in parts if p in {m for m, _, _ in COLD}),
                   save=next((p.split("=", 1)[1] for p in parts if p.startswith("--save=")), None),
                   against=next((p.split("=", 1)[1] for p in parts if p.startswith("--against=")), None),
                   tails=next((p.split("=", 1)[1] for p in parts if p.startswith("--tails=")), "exact"))
