"""The channels-last float32 CNN tail (hwsim.solve.tail_cnn) against the simulator's float run."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

from hwsim import sim
from hwsim.graph.zoo import load_model
from hwsim.solve.data import synthetic
from hwsim.solve.output_error import float_values
from hwsim.solve.tail import boundary_values, float32_outputs, subgraph
from hwsim.solve.tail_cnn import ChannelsLast


@pytest.fixture(scope="module")
def small_resnet():
    g = load_model("resnet18", {"batch": 2, "resolution": 40, "width": 8})
    g, ref = float_values(g, synthetic(g, 2, 0))
    return g, ref


@pytest.mark.parametrize("layer", ["conv1", "layer1.0.conv2", "layer2.0.downsample.0", "layer4.1.conv1"])
def test_channels_last_tail_matches_the_simulator(small_resnet, layer):
    """Descendants of ``layer`` fed with perturbed values: float32 channels-last outputs equal the
    simulator's (float64 ops, each output rounded to float32) within float32 roundoff; batch norms
    are folded, and no fed array is overwritten."""
    g, ref = small_resnet
    post = subgraph(g, nx.descendants(g.nx, layer), "tail")
    cnn = ChannelsLast(post)
    assert cnn.bn_of and any(op.op == "conv2d" for op in post.ops())
    rng = np.random.default_rng(1)
    feed = {n: (v * (1 + 0.05 * rng.standard_normal(v.shape))).astype(np.float32)
            for n, v in boundary_values(post, ref).items()}
    kept = {n: v.copy() for n, v in feed.items()}
    fast = float32_outputs(post, feed)
    for n, v in feed.items():
        np.testing.assert_array_equal(v, kept[n])
    exact = sim.run(post, kept, metrics=False, float_reference=False).output_values
    for n in post.outputs:
        want = np.asarray(exact[n], np.float64)
        scale = np.sqrt(np.mean(want ** 2))
        err = np.sqrt(np.mean((fast[n] - want) ** 2)) / scale
        assert 0 < err < 1e-5, (n, err)
