"""Each solver layer simulated alone at each choice (``output_error._alone``), as a cold solve runs it.

For every solver layer of resnet18 / MiniLM-L6 s128 on int8-npu (the target's default choices,
8 synthetic samples, the float reference computed once, as ``tables`` does): the layer's choices
side by side in one simulator run (``_alone``, what the solve runs) against the baseline in the
same process, one simulator run per choice (``_alone_each``, what the solve ran before). The
two alternate layer by layer (the order flips on every repeat); their outputs must be equal
array for array. Wall and process CPU seconds are summed over all layers; on a shared machine
CPU time is the steadier one.

Run: ``python benchmarks/bench_alone.py [resnet18] [minilm-l6] [--repeat N]``
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np


def setup(model: str, samples: int = 8, seed: int = 0):
    """(graph with weights, float reference of every tensor, solver layers, choices of each)."""
    from hwsim.solve.api import _data, _sim_graph
    from hwsim.solve.choices import choices_for
    from hwsim.solve.layers import prunable, solver_layers
    from hwsim.solve.output_error import float_values
    from hwsim.sim.runner import ensure_weights
    from hwsim.targets import load_target

    shapes = {"sequence": 128} if model.startswith("minilm") else {}
    g, n, _ = _sim_graph(model, shapes, samples)
    g = ensure_weights(g, seed)
    ref = float_values(g, _data(g, None, n, seed), seed)[1]
    chs = choices_for(None, load_target("int8-npu"))
    layers = solver_layers(g)
    return g, ref, [(layer, [c for c in chs if prunable(g, layer, c)]) for layer in layers]


def one_run_each(g, layer, chs, ref, seed=0):
    from hwsim.graph.annotate import apply_config
    from hwsim.solve import output_error as oe
    from hwsim.solve.configs import layer_config

    one, feed = oe._one_op(g, layer, oe.nx.descendants(g.nx, layer), ref)
    return oe._alone_each([apply_config(one, layer_config(layer, c)) for c in chs], layer, chs, feed, ref, seed)


def side_by_side(g, layer, chs, ref, seed=0):
    from hwsim.solve import output_error as oe

    return oe._alone(g, layer, chs, ref, seed)[0]


def same(a: list[dict], b: list[dict]) -> bool:
    return len(a) == len(b) and all(set(x) == set(y) and all(np.array_equal(x[n], y[n]) for n in x)
                                    for x, y in zip(a, b))


def bench(model: str, repeat: int) -> None:
    from hwsim.heap import keep_freed_memory

    g, ref, work = setup(model)
    runs = sum(len(chs) for _, chs in work)
    ways = {"one run per choice (baseline)": one_run_each, "side by side": side_by_side}
    spent = {k: [0.0, 0.0] for k in ways}
    with keep_freed_memory():  # as measure() runs it
        for fn in ways.values():  # compile and warm on the first layer
            fn(g, work[0][0], work[0][1], ref)
        for r in range(repeat):
            for layer, chs in work:
                outs = []
                for name in (list(ways) if r % 2 == 0 else list(ways)[::-1]):
                    t, c = time.perf_counter(), time.process_time()
                    outs.append(ways[name](g, layer, chs, ref))
                    spent[name][0] += time.perf_counter() - t
                    spent[name][1] += time.process_time() - c
                if not same(*outs):
                    raise SystemExit(f"{model} {layer}: the two ways differ")
    print(f"{model}: {len(work)} layers, {runs} runs; outputs equal; load {os.getloadavg()[0]:.1f}")
    for name, (w, c) in spent.items():
        print(f"  {name:32s} wall {w / repeat:6.2f} s  cpu {c / repeat:6.2f} s")
    base, new = spent["one run per choice (baseline)"][1], spent["side by side"][1]
    print(f"  CPU ratio baseline / side by side: {base / new:.2f}x")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("models", nargs="*", default=["resnet18", "minilm-l6"])
    p.add_argument("--repeat", type=int, default=2)
    args = p.parse_args()
    for m in args.models:
        bench(m, args.repeat)


if __name__ == "__main__":
    main()
