"""Numbers behind docs/solver_results.md: real accuracy of solved plans, and metric agreement.

1. digits CNN (models/digits_cnn.onnx, trained by benchmarks/train_digits_cnn.py): for each
   uniform baseline (int8 / int4 / int2 weights, int8 activations) solve with energy_j <= the
   baseline's energy; evaluate baseline and plan with the bit-accurate simulator on the 360
   held-out images (models/digits_test.npz). Sensitivity: output_mse on the 32 calibration
   images (models/digits_calib.npz, from the training split).
2. The accuracy-energy front (--pareto) with held-out accuracy per point.
3. Agreement of the proxy metric with simulated output_mse over all (layer, choice) pairs:
   Spearman and Kendall rank correlation, on digits (real weights and data) and on zoo models
   with synthetic weights and inputs.

Run: ``python benchmarks/solver_results.py [--skip-zoo]`` (digits part about a minute).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DIGITS = str(ROOT / "models" / "digits_cnn.onnx")
CALIB = str(ROOT / "models" / "digits_calib.npz")
TEST = ROOT / "models" / "digits_test.npz"
CHOICES = "w=int8,int6,int4,int3,int2;a=int8;prune=0,25%,50%,75%"


def accuracy(config) -> float:
    from hwsim import sim
    from hwsim.graph.annotate import apply_config
    from hwsim.graph.zoo import load_model

    with np.load(TEST) as z:
        x, y = z["image"], z["labels"]
    g = load_model(DIGITS, {"batch": len(y)})
    r = sim.run(apply_config(g, config), {"image": x})
    return float((r.output_values["logits"].argmax(1) == y).mean())


def layers_text(plan) -> str:
    """Each layer's weights (and pruning); with several activation formats in the plan, each layer's
    activations and the format of the tensors no layer chooses too."""
    rest = plan.config().defaults.activations
    one = {x.activation_format for x in plan.layers} == {rest}
    text = ", ".join(f"{x.name} {x.weight_format}" + ("" if one else f"/a{x.activation_format}")
                     + ("" if x.pruning == "0" else f"/{x.pruning}") for x in plan.layers)
    return text if one else f"{text}; other tensors {rest}"


def dominance(target: str, cache: str, choices: str = CHOICES) -> None:
    from hwsim.cost import estimate
    from hwsim.graph.annotate import QuantConfig
    from hwsim.solve import plan_from, tables
    from hwsim.targets import load_target

    tb = tables(DIGITS, target, choices, "output_mse", CALIB, 32, cache)
    print(f"\n### {target}: choices `{choices}`\n")
    print("| baseline | energy (J) | held-out acc. | solved plan energy (J) | plan held-out acc. | plan layers |")
    print("|---|---|---|---|---|---|")
    for w in ("int8", "int4", "int2"):
        cfg = QuantConfig.simple(w, "int8", load_target(target).activation_scope)  # simulated as priced
        e = estimate(DIGITS, target, config=cfg, shapes={"batch": 1}).total.energy_j
        plan = plan_from(tb, {"energy_j": e})
        if plan.status == "infeasible":  # the table's cheapest plan is above the baseline's energy
            print(f"| uniform {w} | {e:.4g} | {accuracy(cfg):.4f} | infeasible (min reachable "
                  f"{plan.budgets['energy_j'].min_reachable:.4g}) | - | - |")
            continue
        print(f"| uniform {w} | {e:.4g} | {accuracy(cfg):.4f} | {plan.budgets['energy_j'].value:.4g} | "
              f"{accuracy(plan.config()):.4f} | {layers_text(plan)} |")
        print(f"  (calibration output_mse of the plan: simulated whole {plan.measured:.4g}, summed {plan.objective:.4g})")
    return tb


def front(tb, points: int = 8) -> None:
    from hwsim.solve import pareto

    print("\n| energy limit (J) | plan energy (J) | summed output_mse | held-out acc. | layers |")
    print("|---|---|---|---|---|")
    for p in pareto(tb, "energy_j", points):
        print(f"| {p.budgets['energy_j'].limit:.4g} | {p.budgets['energy_j'].value:.4g} | {p.objective:.4g} | "
              f"{accuracy(p.config()):.4f} | {layers_text(p)} |")


def agreement(model: str, target: str, choices: str, cache: str, calib=None, samples: int = 8,
              shapes=None) -> None:
    from scipy.stats import kendalltau, spearmanr

    from hwsim.solve import tables

    t = time.perf_counter()
    sim_tb = tables(model, target, choices, "output_mse", calib, samples, cache, shapes)
    dt = time.perf_counter() - t
    prox = tables(model, target, choices, "proxy", calib, samples, cache, shapes).sensitivity.values
    mse = sim_tb.sensitivity.values
    ok = np.isfinite(mse) & np.isfinite(prox)
    rho = spearmanr(mse[ok], prox[ok]).statistic
    tau = kendalltau(mse[ok], prox[ok]).statistic
    within = [spearmanr(m[f], p[f]).statistic for m, p, f in zip(mse, prox, ok) if f.sum() > 2]
    across = spearmanr(np.nanmin(np.where(ok, mse, np.nan), 1), np.nanmin(np.where(ok, prox, np.nan), 1)).statistic
    print(f"| {model} | {'calib' if calib else 'synthetic'} {samples} | {len(mse)} x {mse.shape[1]} | {rho:.3f} | "
          f"{tau:.3f} | {np.nanmean(within):.3f} | {across:.3f} | {dt:.0f} s |")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--skip-zoo", action="store_true")
    args = ap.parse_args(argv)
    cache = tempfile.mkdtemp(prefix="hwsim-results-")
    tb = dominance("rs-engine", cache)
    front(tb)
    dominance("int8-npu", cache, "w=int8,int4,int2;a=int8,int16")
    print("\n| model | data | layers x choices | Spearman | Kendall | mean within-layer Spearman | "
          "across layers (cheapest choice) | output_mse time |")
    print("|---|---|---|---|---|---|---|---|")
    ch = "w=int8,int4,int2;a=int8,int4;prune=0,50%"
    agreement(DIGITS, "rs-engine", ch, cache, CALIB, 32)
    if not args.skip_zoo:
        agreement("resnet18:resolution=64", "int8-npu", "w=int8,int4,int2;a=int8", cache, None, 8)
        agreement("mobilenet_v2:resolution=64", "int8-npu", "w=int8,int4;a=int8", cache, None, 4)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
