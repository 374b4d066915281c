"""``hwsim calibrate --host``: measure the CPU this runs on and write a target for it.

What is measured (each number's source says so in the written YAML):

- physical cores (``/sys/devices/system/cpu/*/topology``), clock (``/proc/cpuinfo``), cache sizes
  (``/sys/devices/system/cpu/cpu0/cache``);
- memory bandwidth per level: numpy copies of a buffer sized to half of each cache level and of 64 MB
  for DRAM (bytes read + written per second, best of several);
- achieved MAC rate through onnxruntime (threads = physical cores): fp32 ``MatMul`` and int8
  ``MatMulInteger`` (uint8 activations x int8 weights) on a (m x k) @ (k x n) GEMM;
- energy: package RAPL (``/sys/class/powercap/intel-rapl:0/energy_uj``) where readable; otherwise the
  target's energy is marked uncalibrated (``energy_scope: null`` and assumed per-bit energies).

Whole ONNX networks are then timed in onnxruntime and written as measurement records, so
``hwsim validate host.yaml host.jsonl`` holds the target against them.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

RAPL = Path("/sys/class/powercap/intel-rapl:0/energy_uj")


@dataclass
class HostFacts:
    """What was measured on this machine."""

    cores: int
    clock_hz: float
    caches: list[tuple[int, int]]            # (level, bytes), data/unified caches, innermost first
    bandwidth: list[float]                    # bytes/s per cache level, then DRAM
    rates: dict[str, float]                   # 'fp32' / 'int8' -> MAC/s
    gemm: tuple[int, int, int]
    rapl: bool
    records: list[dict] = field(default_factory=list)


def physical_cores() -> int:
    """Distinct (package, core) pairs in sysfs; os.cpu_count() where sysfs has no topology."""
    seen = set()
    for d in Path("/sys/devices/system/cpu").glob("cpu[0-9]*/topology"):
        try:
            seen.add(((d / "physical_package_id").read_text().strip(), (d / "core_id").read_text().strip()))
        except OSError:
            continue
    return len(seen) or os.cpu_count() or 1


def clock_hz() -> float:
    """Highest 'cpu MHz' of /proc/cpuinfo (a current, not nominal, clock), else 2 GHz (assumption)."""
    try:
        mhz = [float(line.split(":")[1]) for line in Path("/proc/cpuinfo").read_text().splitlines()
               if line.lower().startswith("cpu mhz")]
        return max(mhz) * 1e6 if mhz else 2.0e9
    except OSError:
        return 2.0e9


def cache_sizes() -> list[tuple[int, int]]:
    """(level, bytes) of cpu0's data and unified caches, innermost first."""
    out = {}
    for d in Path("/sys/devices/system/cpu/cpu0/cache").glob("index*"):
        try:
            if (d / "type").read_text().strip() == "Instruction":
                continue
            level = int((d / "level").read_text())
            size = (d / "size").read_text().strip().upper()
        except (OSError, ValueError):
            continue
        mult = {"K": 1024, "M": 1024 ** 2, "G": 1024 ** 3}.get(size[-1], 1)
        out[level] = int(size.rstrip("KMG")) * mult
    return sorted(out.items())


def copy_bandwidth(nbytes: int, seconds: float) -> float:
    """Bytes read + written per second by numpy copies of an ``nbytes`` buffer (best of repeats)."""
    n = max(1024, nbytes // 8)
    a, b = np.ones(n), np.zeros(n)
    np.copyto(b, a)  # touch every page before timing
    reps = max(1, int(2e8 // (16 * n)))
    best, end = float("inf"), time.perf_counter() + seconds
    while True:
        t0 = time.perf_counter()
        for _ in range(reps):
            np.copyto(b, a)
        best = min(best, (time.perf_counter() - t0) / reps)
        if time.perf_counter() > end:
            return 16 * n / best


def _session(model, threads: int):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])


def _gemm_model(kind: str, k: int, n: int):
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    if kind == "fp32":
        w = numpy_helper.from_array(rng.standard_normal((k, n)).astype(np.float32), "w")
        node = helper.make_node("MatMul", ["x", "w"], ["y"])
        x_t, y_t = TensorProto.FLOAT, TensorProto.FLOAT
    else:
        w = numpy_helper.from_array(rng.integers(-128, 127, (k, n)).astype(np.int8), "w")
        node = helper.make_node("MatMulInteger", ["x", "w"], ["y"])
        x_t, y_t = TensorProto.UINT8, TensorProto.INT32
    g = helper.make_graph([node], kind, [helper.make_tensor_value_info("x", x_t, ["m", k])],
                          [helper.make_tensor_value_info("y", y_t, ["m", n])], [w])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])


def time_session(sess, feeds: dict, seconds: float) -> float:
    """Median seconds per run after a warm-up."""
    sess.run(None, feeds)
    times, end = [], time.perf_counter() + seconds
    while time.perf_counter() < end or len(times) < 5:
        t0 = time.perf_counter()
        sess.run(None, feeds)
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def gemm_rate(kind: str, m: int, k: int, n: int, threads: int, seconds: float) -> float:
    """MAC/s of onnxruntime's fp32 MatMul or int8 MatMulInteger on (m x k) @ (k x n)."""
    sess = _session(_gemm_model(kind, k, n), threads)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((m, k)).astype(np.float32) if kind == "fp32" else \
        rng.integers(0, 255, (m, k)).astype(np.uint8)
    return m * k * n / time_session(sess, {"x": x}, seconds)


def measure_host(seconds: float = 1.0, gemm: tuple[int, int, int] = (256, 1024, 1024)) -> HostFacts:
    """Measure this machine (about 10 x ``seconds``)."""
    cores = physical_cores()
    caches = cache_sizes()
    bws = [copy_bandwidth(size // 4, seconds) for _, size in caches]  # source + copy = half the level
    bws.append(copy_bandwidth(64 * 2 ** 20, seconds))
    rates = {kind: gemm_rate(kind, *gemm, cores, seconds) for kind in ("fp32", "int8")}
    readable = RAPL.is_file() and os.access(RAPL, os.R_OK)
    return HostFacts(cores=cores, clock_hz=clock_hz(), caches=caches, bandwidth=bws, rates=rates, gemm=gemm,
                     rapl=readable)


def time_onnx_model(path: str | Path, shapes: dict[str, int], threads: int, seconds: float) -> float:
    """Median onnxruntime latency of an ONNX file with random inputs (dynamic dims from ``shapes``)."""
    import onnx

    model = onnx.load(str(path))
    sess = _session(model, threads)
    rng = np.random.default_rng(0)
    feeds = {}
    for inp in sess.get_inputs():
        dims = [d if isinstance(d, int) else shapes.get(str(d), 1) for d in inp.shape]
        if "int" in inp.type:
            # small ids (0/1) are valid for any embedding table or index input
            feeds[inp.name] = rng.integers(0, 2, dims).astype(np.int64 if "64" in inp.type else np.int32)
        else:
            feeds[inp.name] = rng.standard_normal(dims).astype(np.float32)
    try:
        return time_session(sess, feeds, seconds)
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own types; say which model failed
        from hwsim.errors import ConfigError

        raise ConfigError(f"onnxruntime could not run {str(path)!r} with random inputs of shapes "
                          f"{ {k: v.shape for k, v in feeds.items()} }: {exc}") from None


def _relu_chain(n: int):
    from onnx import TensorProto, helper

    names = ["x"] + [f"t{i}" for i in range(1, n)] + ["y"]
    nodes = [helper.make_node("Relu", [names[i]], [names[i + 1]]) for i in range(n)]
    g = helper.make_graph(nodes, f"relu{n}", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [8])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [8])])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])


def kernel_overhead_s(threads: int, seconds: float, n: int = 64) -> float:
    """Per-node dispatch time inside an onnxruntime graph: a chain of ``n`` Relus on 8 floats minus one
    Relu, over ``n - 1`` (the fixed cost of a session run is not a per-layer cost)."""
    x = {"x": np.ones(8, np.float32)}
    one = time_session(_session(_relu_chain(1), threads), x, seconds)
    many = time_session(_session(_relu_chain(n), threads), x, seconds)
    return max(many - one, 0.0) / (n - 1)


def host_target(f: HostFacts, overhead_s: float, date: str) -> dict:
    """A target mapping (validated by :class:`hwsim.targets.schema.Target`) from measured facts."""
    per_cycle = {k: v / (f.cores * f.clock_hz) for k, v in f.rates.items()}
    m, k, n = f.gemm
    how = f"hwsim calibrate --host on {date}"
    rate_src = (f"measured ({how}): onnxruntime {{op}} {m}x{k}x{n}, {f.cores} threads, "
                f"{{rate:.3g}} MAC/s / ({f.cores} cores x {f.clock_hz / 1e9:.3g} GHz)")
    names = [f"l{level}" for level, _ in f.caches] + ["dram"]
    e_bits = [0.05 * 2 ** i for i in range(len(f.caches))] + [20.0]
    e_src = "measured RAPL" if f.rapl else "assumption, uncalibrated (RAPL not readable here)"
    memory = []
    for i, name in enumerate(names):
        private = i < len(f.caches) and f.caches[i][0] <= 2
        bw = f.bandwidth[i] * (f.cores if private else 1)
        memory.append({"name": name, "size_bytes": None if name == "dram" else float(f.caches[i][1]),
                       "bandwidth_bytes_per_s": float(f"{bw:.4g}"), "read_energy_pj_per_bit": e_bits[i],
                       "write_energy_pj_per_bit": e_bits[i],
                       "source": (f"size from sysfs; bandwidth measured ({how}): numpy copy of "
                                  f"{'a quarter of the level (source + copy = half)' if name != 'dram' else '64 MB'}, one thread"
                                  f"{f' x {f.cores} cores (private level)' if private else ''}; "
                                  f"energy per bit: {e_src}")})
    return {
        "schema_version": 1, "name": "host",
        "description": f"this machine, {f.cores} physical cores (hwsim calibrate --host, {date})",
        "technology_nm": 7.0, "clock_hz": float(f"{f.clock_hz:.4g}"), "static_power_w": 5.0,
        "energy_scope": "chip" if f.rapl else None, "layer_overhead_s": float(f"{overhead_s:.3g}"),
        "source": (f"clock from /proc/cpuinfo, per-node overhead of onnxruntime measured ({how}); "
                   f"technology_nm 7 and static_power_w 5 are assumptions; energy {e_src}"),
        "compute": {
            "mapping": "simd", "cores": f.cores, "vector_macs": 8, "tile_rows": 4,
            "rates": [
                {"activation": "fp32", "weight": "fp32", "macs_per_cycle": float(f"{per_cycle['fp32']:.4g}"),
                 "accumulator": "fp32", "efficiency": 1.0,
                 "source": rate_src.format(op="MatMul fp32", rate=f.rates["fp32"])},
                {"activation": "int8", "weight": "int8", "macs_per_cycle": float(f"{per_cycle['int8']:.4g}"),
                 "accumulator": "int32", "efficiency": 1.0,
                 "source": rate_src.format(op="MatMulInteger u8 x s8", rate=f.rates["int8"])},
            ],
            "efficiency": 1.0, "efficiency_source": "the rates are achieved rates (measured)",
            "elementwise_ops_per_cycle": 8, "unpack_weights_per_cycle": 32, "lut_lookups_per_cycle": 16,
            "lut_table_entries": 64, "register_bytes": 512,
            "source": ("assumption: AVX2-class core (8 fp32 lanes, 16 x 32-byte registers) for the "
                       "elementwise, unpack and look-up rates"),
        },
        "memory": memory,
    }
