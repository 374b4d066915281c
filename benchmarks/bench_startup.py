"""Whole-process time of ``hwsim`` commands (not a test): what a user waits for, beyond the work.

Usage: ``python benchmarks/bench_startup.py [--repeat 3] [--baseline-src DIR] [--cold] [CASE ...]``

Each case runs ``python -m hwsim ...`` in fresh processes and reports the median wall time and CPU
time (user + system of the child, from ``resource.getrusage``) of ``repeat`` runs, after one
warm-up run that fills numba's cache (and Python's bytecode cache). ``--cold`` adds one run per
case with an empty numba cache (``NUMBA_CACHE_DIR`` set to a fresh directory): every kernel the
command calls is compiled, as on the first run after installing or upgrading hwsim.

Cases: ``help`` (``hwsim --help``), ``simulate-<model>`` for the ``bench_sim.py --qdq`` models
(``qdq_zoo``, written once into a temporary directory with seeded inputs; ``--requant onnxruntime
--pairwise-int16``), ``solve-resnet18`` (``solve resnet18 --target int8-npu --budget
energy_j<=1`` with every sensitivity already in its cache, so what is left is start, imports,
model building, costs and the MILP).

``--baseline-src DIR`` (a directory holding another ``hwsim`` package, e.g. from ``git archive
<commit> hwsim | tar -x -C DIR``) runs every case on that code too, alternating with this tree,
each with its own numba cache, so before/after come from one invocation.
"""

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


def _qdq_files(d: str) -> dict:
    """Write the bench_sim QDQ models and their seeded inputs under ``d``: name -> (model, inputs)."""
    sys.path.insert(0, HERE)
    import qdq_zoo

    out = {}
    for name in ("resnet18", "mobilenet_v2", "bert"):
        model, shape = getattr(qdq_zoo, name)()
        path = qdq_zoo.quantized(model, shape, os.path.join(d, f"{name}.onnx"))
        x = np.random.default_rng(11).standard_normal(shape).astype(np.float32)
        np.savez(os.path.join(d, f"{name}_in.npz"), x=x)
        out[name] = (path, os.path.join(d, f"{name}_in.npz"))
    return out


def cases(d: str) -> dict:
    files = _qdq_files(d)
    out = {"help": ["--help"]}
    for name, (model, inputs) in files.items():
        out[f"simulate-{name}"] = ["simulate", model, "--inputs", inputs, "--requant", "onnxruntime",
                                   "--pairwise-int16"]
    out["solve-resnet18"] = ["solve", "resnet18", "--target", "int8-npu", "--budget", "energy_j<=1",
                             "--cache-dir", os.path.join(d, "solve-cache"), "--quiet"]
    return out


def run_once(src: str, args: list, numba_cache: str) -> tuple[float, float]:
    """(wall s, child CPU s) of one ``python -m hwsim ARGS`` with ``src`` first on the path."""
    env = {**os.environ, "PYTHONPATH": src, "NUMBA_CACHE_DIR": numba_cache}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # a user's Python keeps bytecode caches
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "hwsim", *args], env=env, cwd=tempfile.gettempdir(),
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode not in (0, 2) or (proc.returncode == 2 and args != ["--help"]):
        sys.exit(f"hwsim {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def measure(srcs: dict, todo: dict, repeat: int, cold: bool, d: str) -> dict:
    """label -> case -> {"wall_s", "cpu_s", ["cold_wall_s", "cold_cpu_s"]}; runs alternate between sources."""
    res = {label: {} for label in srcs}
    for case, args in todo.items():
        warm = {label: os.path.join(d, f"numba-{label}") for label in srcs}
        for label, src in srcs.items():
            if cold:
                w, c = run_once(src, args, tempfile.mkdtemp(dir=d))
                res[label].setdefault(case, {}).update(cold_wall_s=w, cold_cpu_s=c)
            run_once(src, args, warm[label])  # warm-up: fills this source's numba cache
        samples = {label: [] for label in srcs}
        for _ in range(repeat):
            for label, src in srcs.items():
                samples[label].append(run_once(src, args, warm[label]))
        for label in srcs:
            w, c = np.median(np.array(samples[label]), axis=0)
            res[label].setdefault(case, {}).update(wall_s=float(w), cpu_s=float(c), load=os.getloadavg()[0])
    return res


def report(res: dict) -> None:
    labels = list(res)
    cold = any("cold_cpu_s" in r for r in res[labels[0]].values())
    head = "| case |" + "".join(f" {lb}: wall s / CPU s |" for lb in labels)
    if cold:
        head += "".join(f" {lb}, empty numba cache: wall s / CPU s |" for lb in labels)
    print(head + " load |")
    print("|---" * (head.count("|") - 1 + 1) + "|")
    for case in res[labels[0]]:
        row = f"| {case} |" + "".join(f" {res[lb][case]['wall_s']:.2f} / {res[lb][case]['cpu_s']:.2f} |" for lb in labels)
        if cold:
            row += "".join(f" {res[lb][case]['cold_wall_s']:.1f} / {res[lb][case]['cold_cpu_s']:.1f} |" for lb in labels)
        print(row + f" {res[labels[0]][case]['load']:.1f} |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--baseline-src", help="directory holding the hwsim package to measure as 'before'")
    p.add_argument("--cold", action="store_true", help="also one run per case with an empty numba cache")
    p.add_argument("case", nargs="*", help="cases to run (default all)")
    args = p.parse_args()
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cpus, python {platform.python_version()}, "
          f"{time.strftime('%Y-%m-%d %H:%M')}, load average {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as d:
        todo = cases(d)
        todo = {k: v for k, v in todo.items() if not args.case or k in args.case}
        if "solve-resnet18" in todo:  # fill the sensitivity cache once, outside the timings
            run_once(ROOT, todo["solve-resnet18"], os.path.join(d, "numba-after"))
        srcs = {"before": os.path.abspath(args.baseline_src)} if args.baseline_src else {}
        srcs["after"] = ROOT
        report(measure(srcs, todo, args.repeat, args.cold, d))


if __name__ == "__main__":
    main()
