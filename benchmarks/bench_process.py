"""Whole-process ``hwsim simulate`` against a whole onnxruntime process, on the same QDQ file and inputs (not a test).

Usage: ``python benchmarks/bench_process.py MODEL.onnx [--shape 32,3,48,192] [--repeat 5] [--per-channel]
[--calib 8] [--hwsim-args "--ort-activations"]``

What a user waits for, start to end: issue 13 measured a public classifier quantized by onnxruntime's
``quantize_static`` at batch 32 as 19 s for ``hwsim simulate`` against 0.28 s for onnxruntime,
whole process each. ``MODEL`` is a float ONNX model with one input (e.g. a file of ``pytest -m
corpus``'s cache, tests/corpus); it is quantized here by ``quantize_static`` (QDQ, u8 activations,
s8 weights, per tensor unless ``--per-channel``, calibrated on ``--calib`` seeded N(0, 1) inputs of
``--shape``), and one seeded N(0, 1) input of that shape is written to an ``.npz``. Then, in fresh
processes, alternating, after one warm-up each (numba's cache and Python's bytecode filled, as for
a user's second run):

- ``python -m hwsim simulate Q.onnx --inputs IN.npz --requant onnxruntime --out OUT.npz``
  (``--pairwise-int16`` where onnxruntime's u8 x s8 pairs saturate on this CPU), with the float
  reference (the default: the QDQ graph without its quantizers), with ``--no-reference`` and with
  ``--reference-model MODEL`` (the float file as the reference);
- ``python -c`` importing onnxruntime, making a session (2 intra-op threads, as bench_sim) and
  running the same inputs, writing its outputs.

Prints the median wall and CPU (user + system of the child) of ``--repeat`` runs, the ratios of wall
times, and how many outputs of each hwsim run differ from onnxruntime's (boundary float32 values).
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

ORT_SCRIPT = """
import sys
import numpy as np
import onnxruntime as ort
so = ort.SessionOptions()
so.log_severity_level, so.intra_op_num_threads = 3, 2
s = ort.InferenceSession(sys.argv[1], so, providers=["CPUExecutionProvider"])
x = dict(np.load(sys.argv[2]))
y = s.run(None, x)
np.savez(sys.argv[3], **{o.name: v for o, v in zip(s.get_outputs(), y)})
"""


def input_of(path: str, shape: str | None, batch: int) -> tuple[str, tuple]:
    """(name, shape) of the model's one graph input: ``--shape`` or its static dims with ``batch`` first."""
    import onnx

    m = onnx.load(path, load_external_data=False)
    inits = {t.name for t in m.graph.initializer}
    ins = [i for i in m.graph.input if i.name not in inits]
    if len(ins) != 1:
        sys.exit(f"{path}: {len(ins)} graph inputs; this benchmark takes models with one")
    dims = [d.dim_value if d.HasField("dim_value") else None for d in ins[0].type.tensor_type.shape.dim]
    if shape:
        want = tuple(int(v) for v in shape.split(","))
        if len(want) != len(dims):
            sys.exit(f"--shape {shape}: the input '{ins[0].name}' has {len(dims)} dims")
        return ins[0].name, want
    if any(d is None for d in dims[1:]):
        sys.exit(f"input '{ins[0].name}' has dims {dims}; give them with --shape")
    return ins[0].name, (batch, *dims[1:])


def quantize(path: str, name: str, shape: tuple, out: str, per_channel: bool, calib: int) -> None:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self):
            rng = np.random.default_rng(1)
            self.data = iter([{name: rng.standard_normal(shape).astype(np.float32)} for _ in range(calib)])

        def get_next(self):
            return next(self.data, None)

    quantize_static(path, out, Reader(), quant_format=QuantFormat.QDQ, per_channel=per_channel,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)


def run_once(argv: list) -> tuple[float, float]:
    """(wall s, child CPU s) of one process; exits on failure."""
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # a user's Python keeps bytecode caches
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(argv, env=env, cwd=tempfile.gettempdir(), stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _pairs_saturate() -> bool:
    """What onnxruntime's u8 x s8 kernel does on this CPU (tests/sim/ort_cpu.py asks it)."""
    sys.path.insert(0, ROOT)
    from tests.sim.ort_cpu import ort_u8s8_pairs_saturate

    return ort_u8s8_pairs_saturate()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", help="float ONNX model with one input")
    p.add_argument("--shape", help="input shape, comma-separated (default: --batch and the model's static dims)")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--per-channel", action="store_true")
    p.add_argument("--calib", type=int, default=8, help="calibration inputs for quantize_static")
    p.add_argument("--hwsim-args", default="", help="more arguments for hwsim simulate (e.g. --ort-activations)")
    args = p.parse_args()

    name, shape = input_of(args.model, args.shape, args.batch)
    d = tempfile.mkdtemp(prefix="bench_process_")
    q, inputs = os.path.join(d, "q.onnx"), os.path.join(d, "in.npz")
    quantize(args.model, name, shape, q, args.per_channel, args.calib)
    np.savez(inputs, **{name: np.random.default_rng(11).standard_normal(shape).astype(np.float32)})
    pw = _pairs_saturate()
    outs = {k: os.path.join(d, f"{k}.npz") for k in ("ort", "hwsim", "hwsim_noref", "hwsim_float")}
    sim = [sys.executable, "-m", "hwsim", "simulate", q, "--inputs", inputs, "--requant", "onnxruntime",
           *(["--pairwise-int16"] if pw else []), *args.hwsim_args.split()]
    cmds = {"onnxruntime": [sys.executable, "-c", ORT_SCRIPT, q, inputs, outs["ort"]],
            "hwsim simulate": [*sim, "--out", outs["hwsim"]],
            "hwsim simulate --no-reference": [*sim, "--no-reference", "--out", outs["hwsim_noref"]],
            "hwsim simulate --reference-model": [*sim, "--reference-model", args.model, "--out", outs["hwsim_float"]]}
    for argv in cmds.values():
        run_once(argv)  # warm-up: numba's cache, bytecode
    samples = {k: [] for k in cmds}
    for _ in range(args.repeat):
        for k, argv in cmds.items():
            samples[k].append(run_once(argv))
    want = dict(np.load(outs["ort"]))
    print(f"{platform.machine()}, {os.cpu_count()} cpus, python {platform.python_version()}, "
          f"{time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC, load average {os.getloadavg()[0]:.1f}; "
          f"{os.path.basename(args.model)} quantize_static (QDQ u8/s8, {'per channel' if args.per_channel else 'per tensor'}), "
          f"input '{name}' {shape}; pairwise_int16 {pw}")
    print("| process | wall s (median) | CPU s | wall / onnxruntime | outputs differing from onnxruntime |")
    print("|---|---:|---:|---:|---|")
    ort_wall = float(np.median([w for w, _ in samples["onnxruntime"]]))
    for k, s in samples.items():
        w, c = np.median(np.array(s), axis=0)
        diff = ""
        if k != "onnxruntime":
            got = dict(np.load(outs[{"hwsim simulate": "hwsim", "hwsim simulate --no-reference": "hwsim_noref"}.get(
                k, "hwsim_float")]))
            n = sum(int(np.sum(got[o] != want[o])) for o in want)
            diff = f"{n} of {sum(v.size for v in want.values())}"
        print(f"| {k} | {w:.2f} | {c:.2f} | {w / ort_wall:.1f}x | {diff} |")


if __name__ == "__main__":
    main()
