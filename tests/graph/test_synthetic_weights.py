"""Seeded synthetic weights (hwsim.graph.weights): drawn on several threads, each tensor's values
are those of its own stream drawn alone; the cache's graph digest hashes the weights' bytes."""

import hashlib
import os
import zlib

import numpy as np
import pytest

from hwsim.graph import weights
from hwsim.graph.zoo import load_model
from hwsim.solve.cache import graph_digest


@pytest.mark.parametrize("alone", [1 << 24, 100_000])  # 100,000: the larger weights drawn alone first
def test_threaded_draw_equals_each_tensor_drawn_alone(monkeypatch, alone):
    g = load_model("resnet18", {"batch": 1})
    monkeypatch.setattr(weights, "_THREADED_ELEMENTS", 0)  # every model takes the thread pool
    monkeypatch.setattr(weights, "_ALONE_ELEMENTS", alone)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2}, raising=False)  # three CPUs
    got = weights.synthesize_weights(g, seed=3)
    todo = [t for t in g.tensors.values() if t.data is None and t.role in ("weight", "bias", "buffer")]
    assert len(todo) > 20
    for t in todo:
        want = weights.synthetic_values(t, 3)
        a = got.tensors[t.name].data
        assert a.dtype == want.dtype and a.shape == want.shape
        assert np.array_equal(a, want), t.name
    assert weights.SYNTHETIC_NOTE in got.notes
    # a tensor's values do not depend on which others are drawn with it
    one = weights.synthesize_weights(g, seed=3, layers={"fc"})
    assert np.array_equal(one.tensors["fc.weight"].data, got.tensors["fc.weight"].data)


def test_digest_hashes_each_weight_by_its_bytes():
    g = weights.synthesize_weights(load_model("resnet18", {"batch": 1}), seed=0)
    h = hashlib.sha256()
    for op in g.ops():
        h.update(op.model_dump_json().encode())
    for name in sorted(g.tensors):
        t = g.tensors[name]
        h.update(f"{name}|{t.shape}|{t.role}|{t.dtype}|{t.quant.model_dump_json()}".encode())
        if t.data is not None:
            h.update(str(t.data.dtype).encode() + np.ascontiguousarray(t.data).tobytes())
    h.update("|".join(g.inputs + ["->"] + g.outputs).encode())
    assert graph_digest(g) == h.hexdigest()
    name = "fc.weight"
    changed = g.copy()
    w = g.tensors[name].data.copy()
    w.flat[7] = np.nextafter(w.flat[7], np.float32(np.inf))  # one ulp of one weight
    changed.set_data(name, w)
    assert graph_digest(changed) != graph_digest(g)


def test_synthetic_values_are_the_seeded_streams_of_before():
    """The zoo's numbers (sensitivities, solved plans, golden tables) rest on these values: ResNet-18's
    synthetic weights at seed 0 hash as they did when the per-tensor streams were drawn one by one
    on one thread, out of place (2026-11-27)."""
    g = weights.synthesize_weights(load_model("resnet18", {"batch": 1}), seed=0)
    crc = 0
    for name in sorted(g.tensors):
        if g.tensors[name].data is not None:
            crc = zlib.crc32(np.ascontiguousarray(g.tensors[name].data).view(np.uint8).reshape(-1), crc)
    assert crc == 3419031110
