"""Fuzz the CLI with generated targets, quant configs, model YAMLs and small ONNX graphs, valid and
invalid (issue 12). Every run must end in success (exit 0, finite numbers) or exit 2 with a short
``error: ...`` line: never an internal error, a traceback or a runaway allocation (tracemalloc peak
per run below MEMORY_BUDGET).

Derandomized with a bounded number of examples, so CI runs the same cases in a few seconds; raise
``max_examples`` locally (``HWSIM_FUZZ_EXAMPLES=500``, and ``HWSIM_FUZZ_RANDOM=1`` for new cases each run)
to search further.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import tempfile
import tracemalloc
from pathlib import Path

import numpy as np
import onnx
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto as TP
from onnx import helper as h
from onnx import numpy_helper as nh

from hwsim.cli import main
from hwsim.targets import load_target

#: largest traced allocation peak one fuzzed command may reach
MEMORY_BUDGET = 256 * 2**20
GEMM = "gemm:m=2,k=8,n=4"
EXAMPLES = int(os.environ.get("HWSIM_FUZZ_EXAMPLES", "15"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize="HWSIM_FUZZ_RANDOM" not in os.environ, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def run(argv: list[str]) -> tuple[int, str, str]:
    """``hwsim argv`` in process; asserts the outcome contract and the memory budget."""
    out, err = io.StringIO(), io.StringIO()
    tracemalloc.start()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(argv)
            except SystemExit as exc:  # argparse
                code = exc.code
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    o, e = out.getvalue(), err.getvalue()
    assert code in (0, 2), (argv, code, e[-2000:])
    assert "internal error" not in e and "Traceback" not in e, e[-2000:]
    if code == 2:
        errors = [line for line in e.splitlines() if line.startswith("error: ")]
        assert errors and len(e) < 5000, e[:5000]
    assert peak < MEMORY_BUDGET, (argv, peak)
    return code, o, e


def check_estimate_json(out: str) -> None:
    rep = json.loads(out)
    tot = rep["total"]
    assert math.isfinite(tot["latency_s"]) and math.isfinite(tot["energy_j"]) and tot["energy_j"] >= 0
    assert tot["energy_j"] == pytest.approx(sum(tot["energy_breakdown_j"].values()), rel=1e-9, abs=1e-30)
    assert tot["macs"] >= 0


# ---------------------------------------------------------------- values that break things
NUMBERS = st.sampled_from([0, -1, 1, 1e-308, 1e308, -0.0, 2**63, 0.5, 3, 64, 1e9, "1e9", "abc", None, True,
                           [], {}, float("nan"), float("inf")])
TEXT = st.text(alphabet="abcmdeostaic._*-[]?0123456789", min_size=0, max_size=8)
FORMATS = st.sampled_from(["int8", "int4", "int2", "int16", "int32", "uint8", "fp16", "bf16", "fp32",
                           "fp8_e4m3fn", "fp8_e5m2", "mxfp4_e2m1", "ternary", "binary", "vq_d2_b4",
                           "int99", "fp8", "", "INT8", "fx"])


def _paths(obj, prefix=()):
    """Every (path) to a value in nested dicts/lists."""
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, prefix + (i,))


def _set(obj, path, value, delete=False):
    for p in path[:-1]:
        obj = obj[p]
    if delete and isinstance(obj, dict):
        obj.pop(path[-1], None)
    else:
        obj[path[-1]] = value


BASE_TARGETS = {n: load_target(n).model_dump(mode="json") for n in ("int8-npu", "cortex-a78")}


@st.composite
def targets(draw):
    t = json.loads(json.dumps(BASE_TARGETS[draw(st.sampled_from(sorted(BASE_TARGETS)))]))
    for _ in range(draw(st.integers(0, 3))):
        paths = [p for p in _paths(t) if p]
        path = draw(st.sampled_from(paths))
        kind = draw(st.sampled_from(["value", "delete", "format", "name", "extra"]))
        if kind == "format" and path[-1] in ("activation", "weight", "accumulator"):
            _set(t, path, draw(FORMATS))
        elif kind == "name" and isinstance(t.get("memory"), list) and t["memory"]:
            level = t["memory"][draw(st.integers(0, len(t["memory"]) - 1))]
            if isinstance(level, dict):
                level["name"] = draw(st.sampled_from(["mac", "static", "decode", "memory", "compute", "", "sram"]))
        elif kind == "extra":
            t[draw(TEXT) or "x"] = draw(NUMBERS)
        else:
            _set(t, path, draw(NUMBERS), delete=kind == "delete")
    return t


@st.composite
def quant_configs(draw):
    rule = st.fixed_dictionaries({}, optional={
        "match": st.sampled_from(["*", "gemm", "gemm*", "nope", "[", "gemm.out"]),
        "weights": FORMATS, "activations": FORMATS, "accumulator": FORMATS,
        "weight_granularity": st.sampled_from(["tensor", "channel", "group", "block"]),
        "group_size": st.sampled_from([1, 2, 4, 8, 9, 0, -4, 10**12]),
        "pruning": st.sampled_from(["0", "50%", "2:4", "ch25%", "7:3", "150%", "x"])})
    cfg = {"schema_version": draw(st.sampled_from([1, 1, 1, 2])), "defaults": draw(rule)}
    cfg["layers"] = draw(st.lists(rule, max_size=3))
    if draw(st.booleans()):
        cfg[draw(TEXT) or "y"] = draw(NUMBERS)
    return cfg


PARAM_VALUES = st.one_of(st.integers(-2, 8), st.sampled_from([0.5, "x", None, True, [2, 2], 2**40, 10**30]))


@st.composite
def model_yamls(draw):
    from hwsim.graph.zoo import FAMILIES

    family = draw(st.sampled_from(sorted(FAMILIES) + ["nope"]))
    params = draw(st.dictionaries(st.sampled_from(["m", "k", "n", "batch", "layers", "hidden", "heads", "channels",
                                                   "stride", "kernel", "context", "width", "zz"]),
                                  PARAM_VALUES, max_size=4))
    return {"schema_version": 1, "name": "fuzz", "family": family, "source": "fuzz", "params": params}


OPS = ["Relu", "Add", "MatMul", "Transpose", "Identity", "Neg", "Mul"]


@st.composite
def onnx_models(draw):
    """Small graphs over x (2, 4) and a (4, 4) weight; random wiring, order, outputs and dims."""
    names = ["x", "w"]
    nodes = []
    for i in range(draw(st.integers(1, 5))):
        op = draw(st.sampled_from(OPS))
        arity = 2 if op in ("Add", "MatMul", "Mul") else 1
        pool = names + [f"t{i}", f"t{i + 1}", "ghost"]  # later / own / unknown names make cycles, loops, holes
        ins = [draw(st.sampled_from(pool)) for _ in range(arity)]
        out = f"t{i}" if draw(st.integers(0, 9)) else draw(st.sampled_from(names))  # sometimes write twice
        nodes.append(h.make_node(op, ins, [out], name=f"n{i}"))
        names.append(out)
    if draw(st.booleans()):
        nodes = draw(st.permutations(nodes))
    outs = draw(st.lists(st.sampled_from(names[2:] + ["never"]), min_size=1, max_size=2, unique=True))
    x_dims = [draw(st.sampled_from([2, 2, 2, -2, 0, "batch"])), 4]
    w_dims = draw(st.sampled_from([[4, 4], [4, 4], [4, 5], [-4, -4], [16]]))
    w = nh.from_array(np.ones((4, 4), np.float32), "w")
    w.dims[:] = w_dims
    g = h.make_graph(nodes, "fuzz", [h.make_tensor_value_info("x", TP.FLOAT, x_dims)],
                     [h.make_tensor_value_info(o, TP.FLOAT, None) for o in outs], [w])
    return h.make_model(g, opset_imports=[h.make_opsetid("", 17)])


# ---------------------------------------------------------------- the properties
@FUZZ
@given(targets())
def test_fuzz_targets(t):
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "t.yaml"
        p.write_text(yaml.safe_dump(t))
        code, out, _ = run(["estimate", GEMM, "--target", str(p), "--json"])
        if code == 0:
            check_estimate_json(out)


@FUZZ
@given(quant_configs(), st.sampled_from(["estimate", "simulate"]))
def test_fuzz_quant_configs(cfg, command):
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "q.yaml"
        p.write_text(yaml.safe_dump(cfg))
        extra = ["--target", "int8-npu", "--json"] if command == "estimate" else []
        code, out, _ = run([command, GEMM, "--config", str(p), *extra])
        if code == 0 and command == "estimate":
            check_estimate_json(out)


@FUZZ
@given(model_yamls())
def test_fuzz_model_yamls(spec):
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "m.yaml"
        p.write_text(yaml.safe_dump(spec))
        code, out, _ = run(["estimate", str(p), "--target", "int8-npu", "--json"])
        if code == 0:
            check_estimate_json(out)


@FUZZ
@given(onnx_models())
def test_fuzz_onnx_graphs(model):
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "m.onnx"
        onnx.save(model, p)
        code, out, _ = run(["estimate", str(p), "--shape", "batch=2", "--target", "int8-npu", "--json"])
        if code == 0:
            check_estimate_json(out)


@FUZZ
@given(st.binary(max_size=300), st.sampled_from(["t.yaml", "m.yaml", "q.yaml", "m.onnx", "in.npz"]))
def test_fuzz_garbage_files(data, name):
    with tempfile.TemporaryDirectory() as d:
        p = str(Path(d) / name)
        Path(p).write_bytes(data)
        argv = {"t.yaml": ["estimate", GEMM, "--target", p], "m.yaml": ["estimate", p, "--target", "int8-npu"],
                "q.yaml": ["estimate", GEMM, "--target", "int8-npu", "--config", p],
                "m.onnx": ["estimate", p, "--target", "int8-npu"],
                "in.npz": ["simulate", GEMM, "--inputs", p]}[name]
        run(argv)
