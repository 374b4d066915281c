"""Speed of the bit-accurate simulator ``hwsim.sim.run`` (not a test).

Usage: ``python benchmarks/bench_sim.py [--repeat 3] [--baseline-src DIR] [--profile OUT.prof]``

Cases, each the best of ``repeat`` wall times after one warm-up call:

a. resnet18 int8 weights / int8 activations, 224x224, batch 8, synthetic weights, the float
   reference reused (``reference=``) as the solver does; with per-op metrics (default) and, where
   the simulator has it, ``metrics=False``.
b. a QDQ resnet-like ONNX model (3x3 convs, 64 channels, 56x56, residual Add, GAP, Gemm) made by
   ``onnxruntime.quantization.quantize_static``, ``requant="onnxruntime"`` (full run: float
   reference included), against onnxruntime's own ``InferenceSession.run`` on the same inputs in the
   same process; the outputs are also compared bit for bit.
d. (``--qdq``, issue 13's goal) QDQ models made by ``quantize_static`` (u8 activations, s8
   weights; ``benchmarks/qdq_zoo.py``): a ResNet-18-shaped CNN at batch 8 (224x224), a BERT-shaped
   encoder (4 BERT-base layers) at sequence 128, a MobileNetV2 at batch 8; ``requant="onnxruntime"``
   with ``pairwise_int16`` set from what onnxruntime does on this CPU, against onnxruntime's
   ``InferenceSession.run`` (ORT_ENABLE_ALL, 2 threads) in the same process, in alternation
   (:func:`paired_times`: the ratio is the median of ``repeat`` (at least 5) pairs' ratios); outputs
   compared bit for bit.
c. the solver's use: one ``hwsim.solve.output_error`` tail run (``tail_graph`` from a middle layer
   of resnet18 batch 8, int8/int8 choice, tail reference reused), as ``measure`` calls it.

``--baseline-src DIR`` (a directory holding another ``hwsim`` package, e.g. from
``git archive <commit> hwsim | tar -x -C DIR``) runs the same cases on that code in a subprocess
first, so before/after come from one invocation and are printed side by side.
"""

import argparse
import inspect
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np

BATCH_A, BATCH_B, C_B, HW_B = 8, 4, 64, 56


def best_time(fn, repeat: int) -> float:
    """Best wall time in seconds of ``fn`` over ``repeat`` calls after one warm-up call."""
    fn()
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _no_metrics_kw(run) -> dict:
    """``{"metrics": False}`` when this simulator supports skipping per-op metrics."""
    return {"metrics": False} if "metrics" in inspect.signature(run).parameters else {}


def _command_kw(run) -> dict:
    """What ``hwsim simulate`` passes beyond the defaults: ``keep_reference=False`` (it reads no
    reference value after the run), where this simulator has it."""
    return {"keep_reference": False} if "keep_reference" in inspect.signature(run).parameters else {}


def _resnet18():
    from hwsim.graph.weights import synthesize_weights
    from hwsim.graph.zoo import load_model

    return synthesize_weights(load_model(f"resnet18:batch={BATCH_A}"), 0)


def case_a(repeat: int, profile: str | None) -> dict:
    from hwsim.graph.annotate import quantize_graph
    from hwsim.sim import run

    g = quantize_graph(_resnet18(), "int8", "int8")
    x = {"input": np.random.default_rng(0).standard_normal(g.tensors["input"].shape).astype(np.float32)}
    ref = run(g, x).reference
    out = {"a_metrics_s": best_time(lambda: run(g, x, reference=ref), repeat)}
    kw = _no_metrics_kw(run)
    if kw:
        out["a_nometrics_s"] = best_time(lambda: run(g, x, reference=ref, **kw), repeat)
    if profile:
        import cProfile

        cProfile.runctx("run(g, x, reference=ref)", globals(), {"run": run, "g": g, "x": x, "ref": ref}, profile)
    return out


def _float_resnet_like(path: str, seed: int = 0) -> None:
    """stem conv 3->64, two residual blocks of two 3x3 convs, GAP, flatten, Gemm to 10 classes."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)

    def w(name, *shape):
        s = 1.0 / np.sqrt(np.prod(shape[1:])) if len(shape) > 1 else 0.1
        return numpy_helper.from_array((rng.standard_normal(shape) * s).astype(np.float32), name)

    n, inits, nodes, cur = helper.make_node, [w("ws", C_B, 3, 3, 3), w("bs", C_B)], [], "r0"
    nodes += [n("Conv", ["x", "ws", "bs"], ["c0"], pads=[1] * 4), n("Relu", ["c0"], ["r0"])]
    for b in range(2):
        for k in range(2):
            inits += [w(f"w{b}{k}", C_B, C_B, 3, 3), w(f"b{b}{k}", C_B)]
        nodes += [n("Conv", [cur, f"w{b}0", f"b{b}0"], [f"c{b}0"], pads=[1] * 4), n("Relu", [f"c{b}0"], [f"r{b}0"]),
                  n("Conv", [f"r{b}0", f"w{b}1", f"b{b}1"], [f"c{b}1"], pads=[1] * 4),
                  n("Add", [cur, f"c{b}1"], [f"a{b}"]), n("Relu", [f"a{b}"], [f"o{b}"])]
        cur = f"o{b}"
    inits += [w("wg", 10, C_B), w("bg", 10)]
    nodes += [n("GlobalAveragePool", [cur], ["g"]), n("Flatten", ["g"], ["f"]),
              n("Gemm", ["f", "wg", "bg"], ["y"], transB=1)]
    shape = (BATCH_B, 3, HW_B, HW_B)
    graph = helper.make_graph(nodes, "resnet_like", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, (BATCH_B, 10))], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    onnx.save(model, path)


def _qdq_model(d: str) -> str:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self):
            rng = np.random.default_rng(1)
            self.data = iter([{"x": rng.standard_normal((BATCH_B, 3, HW_B, HW_B)).astype(np.float32)}
                              for _ in range(2)])

        def get_next(self):
            return next(self.data, None)

    _float_resnet_like(os.path.join(d, "f.onnx"))
    q = os.path.join(d, "q.onnx")
    quantize_static(os.path.join(d, "f.onnx"), q, Reader(), quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    return q


def case_b(repeat: int) -> dict:
    import onnxruntime as ort

    from hwsim.graph.onnx import load_onnx
    from hwsim.sim import run

    with tempfile.TemporaryDirectory() as d:
        path = _qdq_model(d)
        g = load_onnx(path, {})
        so = ort.SessionOptions()
        so.log_severity_level = 3
        sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    x = (np.random.default_rng(11).standard_normal((BATCH_B, 3, HW_B, HW_B)) * 1.3).astype(np.float32)
    want = sess.run(None, {"x": x})[0]
    got = run(g, {"x": x}, requant="onnxruntime").outputs["y"]
    return {"b_sim_s": best_time(lambda: run(g, {"x": x}, requant="onnxruntime"), repeat),
            "b_ort_s": best_time(lambda: sess.run(None, {"x": x}), repeat),
            "b_mismatches": int(np.sum(got != want)), "b_outputs": int(want.size)}


def case_c(repeat: int) -> dict:
    from hwsim.graph.annotate import apply_config
    from hwsim.sim import run
    from hwsim.sim.runner import float_reference
    from hwsim.solve.choices import Choice
    from hwsim.solve.configs import layer_config
    from hwsim.solve.layers import solver_layers
    from hwsim.solve.tail import boundary_values, tail_graph

    g = _resnet18()
    x = {"input": np.random.default_rng(0).standard_normal(g.tensors["input"].shape).astype(np.float32)}
    ref = float_reference(g, {"input": x["input"].astype(np.float64)}).values
    layers = solver_layers(g)
    layer = layers[len(layers) // 2]
    tail = tail_graph(g, layer)
    feed = boundary_values(tail, ref)
    cfg = layer_config(layer, Choice(weight_format="int8", activation_format="int8"))
    tail_ref = run(apply_config(tail, cfg), feed).reference
    kw = _no_metrics_kw(run)  # what measure() passes, where the simulator has it
    out = {"c_layer": layer, "c_tail_ops": len(tail.ops()),
           "c_tail_s": best_time(lambda: run(apply_config(tail, cfg), feed, reference=tail_ref, **kw), repeat)}
    return out


def paired_times(sim, ort, repeat: int) -> dict:
    """``sim`` and ``ort`` measured in alternation after one warm-up call of each: ``repeat``
    pairs of one ``sim`` call and the median of 3 ``ort`` calls right after it. This machine's speed
    drifts by 10-25% within minutes, so two blocks of calls measured one after the other can give
    a ratio that neither code earned; a ratio per pair is taken at one moment. Returns the median
    wall times (``sim_s``, ``ort_s``), ``sim``'s median CPU time (``process_time``, all threads) and
    the median of the pairs' ratios (``ratio``)."""
    sim(), ort()
    sims, cpus, orts, ratios = [], [], [], []
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        sim()
        sims.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
        o = []
        for _ in range(3):
            t0 = time.perf_counter()
            ort()
            o.append(time.perf_counter() - t0)
        orts.append(float(np.median(o)))
        ratios.append(sims[-1] / orts[-1])
    return {"sim_s": float(np.median(sims)), "sim_cpu_s": float(np.median(cpus)), "ort_s": float(np.median(orts)),
            "ratio": float(np.median(ratios))}


def _pairs_saturate() -> bool:
    """What onnxruntime's u8 x s8 kernel does on this CPU (tests/sim/ort_cpu.py asks it)."""
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from tests.sim.ort_cpu import ort_u8s8_pairs_saturate

    return ort_u8s8_pairs_saturate()


def case_qdq(repeat: int, names=("resnet18", "bert", "mobilenet_v2")) -> dict:
    import onnxruntime as ort

    import qdq_zoo
    from hwsim.graph.onnx import load_onnx
    from hwsim.sim import run

    pw, out = _pairs_saturate(), {}
    builders = {"resnet18": qdq_zoo.resnet18, "bert": qdq_zoo.bert, "mobilenet_v2": qdq_zoo.mobilenet_v2}
    for name in names:
        with tempfile.TemporaryDirectory() as d:
            path = qdq_zoo.quantized(*builders[name](), os.path.join(d, "q.onnx"))
            g = load_onnx(path, {})
            so = ort.SessionOptions()
            so.log_severity_level, so.intra_op_num_threads = 3, 2
            sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
        x = {"x": np.random.default_rng(11).standard_normal(g.tensors["x"].shape).astype(np.float32)}
        want = sess.run(None, x)[0]
        sim = lambda: run(g, x, requant="onnxruntime", pairwise_int16=pw, **_command_kw(run))  # noqa: E731
        got = next(iter(sim().outputs.values()))  # boundary type (float32), as onnxruntime returns it
        out[name] = {**paired_times(sim, lambda: sess.run(None, x), max(repeat, 5)), "pairwise_int16": pw,
                     "mismatches": int(np.sum(got != want)), "outputs": int(want.size),
                     "max_abs_diff": float(np.max(np.abs(got - want)))}
        if "float_reference" in inspect.signature(run).parameters:  # outputs only, no float reference
            bare = lambda: run(g, x, requant="onnxruntime", pairwise_int16=pw, float_reference=False)  # noqa: E731
            same = bool(np.array_equal(next(iter(bare().outputs.values())), got))
            b = paired_times(bare, lambda: sess.run(None, x), max(repeat, 5))
            out[name].update({"bare_s": b["sim_s"], "bare_cpu_s": b["sim_cpu_s"], "bare_ort_s": b["ort_s"],
                              "bare_ratio": b["ratio"], "bare_same_outputs": same})
        out[name]["load"] = os.getloadavg()[0]
    return out


def _cpu(r: dict, key: str) -> str:
    return f" ({r[key]:.2f})" if key in r else ""


def _ratio(r: dict, sim: str, ort: str, paired: str) -> float:
    """The median of paired ratios where measured so (:func:`paired_times`), else the ratio of the
    medians (a baseline from code that had no pairs)."""
    return r[paired] if paired in r else r[sim] / r[ort]


def report_qdq(now: dict, before: dict | None) -> None:
    print("\n| QDQ model | hwsim s (CPU s) | onnxruntime s | ratio | no float reference: hwsim s (CPU s) / ORT s = ratio "
          "(same outputs) | outputs differing from ORT | load |" + (" before: hwsim s (CPU s), ratio / no ref. |" if before else ""))
    print("|---|---:|---:|---:|---|---|---:|" + ("---|" if before else ""))
    for name, r in now.items():
        bare = (f"{r['bare_s']:.2f}{_cpu(r, 'bare_cpu_s')} / {r['bare_ort_s']:.4f} = {_ratio(r, 'bare_s', 'bare_ort_s', 'bare_ratio'):.1f}x "
                f"({'yes' if r['bare_same_outputs'] else 'NO'})") if "bare_s" in r else "-"
        row = (f"| {name} | {r['sim_s']:.2f}{_cpu(r, 'sim_cpu_s')} | {r['ort_s']:.4f} | {_ratio(r, 'sim_s', 'ort_s', 'ratio'):.1f}x | {bare} | "
               f"{r['mismatches']} of {r['outputs']} (max {r['max_abs_diff']:.3g}) | {r.get('load', 0):.1f} |")
        if before and name in before:
            b = before[name]
            row += f" {b['sim_s']:.2f}{_cpu(b, 'sim_cpu_s')}, {_ratio(b, 'sim_s', 'ort_s', 'ratio'):.1f}x"
            row += (f" / {b['bare_s']:.2f}{_cpu(b, 'bare_cpu_s')}, {_ratio(b, 'bare_s', 'bare_ort_s', 'bare_ratio'):.1f}x |"
                    if "bare_s" in b else " |")
        print(row)
    print(f"pairwise_int16 (onnxruntime u8 x s8 pairs saturate on this CPU): {next(iter(now.values()))['pairwise_int16']}")
    print("outputs differing from ORT: onnxruntime (ORT_ENABLE_ALL) fuses each QDQ pattern into a QLinear kernel "
          "with its own arithmetic, which requant=onnxruntime models (hwsim/sim/ortfused.py). Known and not "
          "modelled: QLinearSoftmax rounds a few quotients that are exact float32 ties the other way (its float32 "
          "row sum is not summed in the order modelled; 1-2 of 196,608 codes per softmax of the BERT shape, which "
          "the layers after it spread over most outputs). ORT_DISABLE_ALL (the QDQ graph run literally, float32 "
          "convs and matmuls) is not the reference here: its float32 sums round single codes at ties differently "
          "from requant=exact and from the ONNX reference evaluator alike (benchmarks/RESULTS.md, 'Who is right').")


def measure(repeat: int, profile: str | None) -> dict:
    return {**case_a(repeat, profile), **case_b(repeat), **case_c(repeat)}


def _baseline(src: str, repeat: int, fn: str = "measure({repeat}, None)") -> dict:
    code = (f"import sys, json; sys.path.insert(0, {os.path.abspath(src)!r}); sys.argv = ['x'];"
            f"sys.path.insert(1, {os.path.dirname(os.path.abspath(__file__))!r}); import bench_sim, hwsim;"
            f"assert hwsim.__file__.startswith({os.path.abspath(src)!r}), hwsim.__file__;"
            f"print(json.dumps(bench_sim.{fn.format(repeat=repeat)}))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tempfile.gettempdir())
    if proc.returncode:
        sys.exit(f"baseline run failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def report(now: dict, before: dict | None) -> None:
    rows = [("a. resnet18 int8/int8 b8 224, reference reused, metrics on", "a_metrics_s"),
            ("a. same, metrics=False", "a_nometrics_s"),
            ("b. QDQ resnet-like (ORT quantize_static), requant=onnxruntime", "b_sim_s"),
            ("b. onnxruntime InferenceSession.run, same inputs", "b_ort_s"),
            (f"c. sensitivity tail run from {now['c_layer']} ({now['c_tail_ops']} ops)", "c_tail_s")]
    head = "| case | before s | after s | after speedup |" if before else "| case | time s |"
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for label, key in rows:
        if key not in now:
            continue
        if before:
            b = before.get(key, before.get("a_metrics_s") if key == "a_nometrics_s" else None)
            print(f"| {label} | {b:.3f} | {now[key]:.3f} | {b / now[key]:.2f}x |")
        else:
            print(f"| {label} | {now[key]:.3f} |")
    print(f"\nb: simulator / onnxruntime = {now['b_sim_s'] / now['b_ort_s']:.0f}x slower; "
          f"outputs differing from onnxruntime: {now['b_mismatches']} of {now['b_outputs']}")
    if before:
        print(f"b before: {before['b_sim_s'] / before['b_ort_s']:.0f}x slower than onnxruntime")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--baseline-src", help="directory holding the hwsim package to measure as 'before'")
    p.add_argument("--baseline-repeat", type=int, help="repeats of the 'before' runs (default --repeat)")
    p.add_argument("--profile", help="write a cProfile of case a (metrics on) to this file")
    p.add_argument("--qdq", nargs="*", metavar="MODEL", help="only the QDQ cases d (default all three: "
                   "resnet18 bert mobilenet_v2)")
    args = p.parse_args()
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cpus, python {platform.python_version()}, "
          f"{time.strftime('%Y-%m-%d %H:%M')}, load average {os.getloadavg()[0]:.1f}")
    import fp_scaling

    print(fp_scaling.describe())  # this machine's speed moves with it (benchmarks/fp_scaling.py)
    if args.qdq is not None:
        names = tuple(args.qdq) or ("resnet18", "bert", "mobilenet_v2")
        fn = f"case_qdq({{repeat}}, {names!r})"
        before = _baseline(args.baseline_src, args.baseline_repeat or args.repeat, fn) if args.baseline_src else None
        report_qdq(case_qdq(args.repeat, names), before)
        return
    before = _baseline(args.baseline_src, args.repeat) if args.baseline_src else None
    report(measure(args.repeat, args.profile), before)


if __name__ == "__main__":
    main()
