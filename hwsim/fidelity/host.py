"""``hwsim calibrate --host``: the facts of the CPU this runs on, and the target built from them.

What is measured here (each number's source says so in the written YAML):

- physical cores (``/sys/devices/system/cpu/*/topology``), clock (``/proc/cpuinfo``), cache sizes
  (``/sys/devices/system/cpu/cpu0/cache``);
- memory bandwidth per level: numpy copies of a buffer sized to half of each cache level and of 64 MB
  for DRAM (bytes read + written per second, best of many short timings);
- energy: package RAPL (``/sys/class/powercap/intel-rapl:0/energy_uj``, :func:`rapl_joules`) where it is
  readable: each workload's energy per run is the counter's change over its timed runs (chip scope; on a
  shared machine it includes everything else running). Where it is not readable, the target's energy is
  marked uncalibrated (``energy_scope: null`` and assumed per-bit energies).

The MAC rates come from the onnxruntime microbenchmarks (:mod:`hwsim.fidelity.host_bench`), the fit
from :mod:`hwsim.fidelity.host_fit`, the whole command from :mod:`hwsim.fidelity.host_run`.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
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
    rapl: bool


def rapl_joules(path: Path = RAPL) -> float | None:
    """Package energy counter in joules (RAPL ``energy_uj``), or None where it cannot be read."""
    try:
        return int(path.read_text()) * 1e-6
    except (OSError, ValueError):
        return None


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


def vector_bytes() -> int:
    """Widest SIMD register of this CPU in bytes from /proc/cpuinfo flags (avx512f 64, avx/avx2 32,
    else 16)."""
    try:
        flags = set(next((line.split(":", 1)[1].split() for line in Path("/proc/cpuinfo").read_text().splitlines()
                          if line.startswith(("flags", "Features"))), []))
    except OSError:
        flags = set()
    return 64 if "avx512f" in flags else 32 if flags & {"avx", "avx2"} else 16


#: L1 loads per cycle per core (assumption: two load ports, as on x86 cores since Haswell / Zen and on
#: Arm Neoverse-class cores); a numpy copy cannot measure L1 (its call overhead exceeds a copy of 8 KB)
L1_LOADS_PER_CYCLE = 2


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
    """Bytes read + written per second by numpy copies of an ``nbytes`` buffer: the best of many short
    timings (each about 0.2 ms), so a shared machine's interruptions fall out."""
    n = max(1024, nbytes // 8)
    a, b = np.ones(n), np.zeros(n)
    np.copyto(b, a)  # touch every page before timing
    reps = max(1, int(2e-4 * 2e10 // (16 * n)))
    best, end = float("inf"), time.perf_counter() + seconds
    while True:
        t0 = time.perf_counter()
        for _ in range(reps):
            np.copyto(b, a)
        best = min(best, (time.perf_counter() - t0) / reps)
        if time.perf_counter() > end:
            return 16 * n / best


def measure_host(seconds: float = 1.0) -> HostFacts:
    """Cores, clock, caches and the copy bandwidth of each level (about ``seconds`` per level)."""
    caches = cache_sizes()
    bws = [copy_bandwidth(size // 4, seconds) for _, size in caches]  # source + copy = half the level
    bws.append(copy_bandwidth(64 * 2 ** 20, seconds))
    readable = rapl_joules() is not None
    return HostFacts(cores=physical_cores(), clock_hz=clock_hz(), caches=caches, bandwidth=bws, rapl=readable)


#: accumulator of each format pair onnxruntime runs (float products sum in fp32, integer ones in int32)
ACCUMULATOR = {"fp32": "fp32", "int8": "int32", "uint8": "int32"}


def host_target(f: HostFacts, rates: dict[tuple[str, str], tuple[float, str]], overhead_s: float,
                date: str) -> dict:
    """A target mapping (validated by :class:`hwsim.targets.schema.Target`) from measured facts.

    ``rates`` maps each (activation, weight) pair to (the best MAC/s a microbenchmark of it reached,
    that microbenchmark's id); the fit then sets each pair's efficiency against that peak.
    """
    how = f"hwsim calibrate --host on {date}"
    names = [f"l{level}" for level, _ in f.caches] + ["dram"]
    e_bits = [0.05 * 2 ** i for i in range(len(f.caches))] + [20.0]
    e_src = ("starting value (assumption), fitted to package RAPL energy" if f.rapl
             else "assumption, uncalibrated (RAPL not readable here)")
    memory = []
    l1_peak = L1_LOADS_PER_CYCLE * vector_bytes() * f.clock_hz * f.cores
    for i, name in enumerate(names):
        private = i < len(f.caches) and f.caches[i][0] <= 2
        bw = f.bandwidth[i] * (f.cores if private else 1)
        what = "a quarter of the level (source + copy = half)" if name != "dram" else "64 MB"
        src = (f"bandwidth measured ({how}): best numpy copy of {what}, one thread"
               f"{f' x {f.cores} cores (private level)' if private else ''}")
        if i == 0 and f.caches and f.caches[0][0] == 1 and l1_peak > bw:
            src = (f"bandwidth {L1_LOADS_PER_CYCLE} loads x {vector_bytes()} B per cycle x {f.cores} cores x clock "
                   f"(assumption: two load ports; a numpy copy measured only {bw / 1e9:.3g} GB/s, its call "
                   f"overhead dominating)")
            bw = l1_peak
        memory.append({"name": name, "size_bytes": None if name == "dram" else float(f.caches[i][1]),
                       "bandwidth_bytes_per_s": float(f"{bw:.4g}"), "read_energy_pj_per_bit": e_bits[i],
                       "write_energy_pj_per_bit": e_bits[i],
                       "source": (f"size from sysfs; {src}; "
                                  f"energy per bit: {e_src}")})
    rate_list = [{"activation": a, "weight": w, "accumulator": ACCUMULATOR[a],
                  "macs_per_cycle": float(f"{macs / (f.cores * f.clock_hz):.4g}"), "efficiency": 1.0,
                  "source": (f"measured ({how}): best onnxruntime microbenchmark of the pair ({bench}), "
                             f"{macs:.3g} MAC/s / ({f.cores} cores x {f.clock_hz / 1e9:.3g} GHz)")}
                 for (a, w), (macs, bench) in rates.items()]
    return {
        "schema_version": 1, "name": "host",
        "description": f"this machine, {f.cores} physical cores, through onnxruntime (hwsim calibrate --host, {date})",
        "technology_nm": 7.0, "clock_hz": float(f"{f.clock_hz:.4g}"), "static_power_w": 5.0,
        "energy_scope": "chip" if f.rapl else None, "layer_overhead_s": float(f"{overhead_s:.3g}"),
        "source": (f"clock from /proc/cpuinfo, per-node overhead of onnxruntime measured ({how}); "
                   f"technology_nm 7 and static_power_w 5 are assumptions; energy {e_src}"),
        "compute": {
            "mapping": "simd", "cores": f.cores, "vector_macs": 8, "tile_rows": 4, "rates": rate_list,
            "efficiency": 1.0, "efficiency_source": "the rates are achieved rates (measured)",
            "elementwise_ops_per_cycle": 8, "unpack_weights_per_cycle": 32, "lut_lookups_per_cycle": 16,
            "lut_table_entries": 64, "register_bytes": 512, "epilogue_fusion": True,
            "movement_nodes": True, "quantize_fusion": True, "qdq_nodes": True,
            "source": ("assumption: AVX2-class core (8 fp32 lanes, 16 x 32-byte registers) for the "
                       "elementwise, unpack and look-up rates; epilogue_fusion: onnxruntime's graph optimizer "
                       "folds BatchNormalization into Conv weights and Relu/Clip/Sigmoid/Tanh/HardSigmoid into "
                       "Conv and Gemm (fusions at level ALL); movement_nodes: onnxruntime runs every Reshape, Transpose, "
                       "Slice, Concat and Gather as a node of its own (its profiles list them); quantize_fusion: its "
                       "DynamicQuantizeMatMul and MatMulIntegerToFloat fusions (level EXTENDED); qdq_nodes: the "
                       "QuantizeLinear / DequantizeLinear nodes its QDQ models keep around float ops"),
        },
        "memory": memory,
    }
