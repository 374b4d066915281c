"""The channels-last float32 CNN tail (hwsim.solve.tail_cnn) against the simulator's float run."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from hwsim import sim
from hwsim.graph.zoo import load_model
from hwsim.solve.data import synthetic
from hwsim.solve.output_error import float_values
from hwsim.solve.tail import boundary_values, float32_outputs, subgraph
from hwsim.solve import tail_cnn
from hwsim.solve.tail_cnn import ChannelsLast, _affine, _winograd_conv, _winograd_weights


@pytest.fixture(scope="module")
def small_resnet():
    """ResNet-18 with 32-channel stem: layer3 and layer4 (128, 256 channels) run as Winograd, on
    3x3 (odd: cropped tiles) and 2x2 maps."""
    g = load_model("resnet18", {"batch": 2, "resolution": 48, "width": 32})
    g, ref = float_values(g, synthetic(g, 2, 0))
    return g, ref


@pytest.mark.parametrize("layer", ["conv1", "layer1.0.conv2", "layer2.0.downsample.0", "layer3.1.conv1",
                                   "layer4.1.conv1"])
def test_channels_last_tail_matches_the_simulator(small_resnet, layer, monkeypatch):
    """Descendants of ``layer`` fed with perturbed values: float32 channels-last outputs equal the
    simulator's (float64 ops, each output rounded to float32) within float32 roundoff (relative
    RMS under 1e-6, the eps of output_error.F32_MIN_CHANGE); batch norms are folded, the one
    after the layer (no convolution in the tail to fold into) runs as a float32 scale and shift,
    Winograd convolutions run, and no fed array is overwritten."""
    g, ref = small_resnet
    post = subgraph(g, nx.descendants(g.nx, layer), "tail")
    cnn = ChannelsLast(post)
    assert cnn.bn_of and any(op.op == "conv2d" for op in post.ops())
    wino = []
    monkeypatch.setattr(tail_cnn, "_winograd_conv", lambda *a: wino.append(1) or _winograd_conv(*a))
    alone = []
    monkeypatch.setattr(tail_cnn, "_affine", lambda *a: alone.append(1) or _affine(*a))
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
        assert 0 < err < 1e-6, (n, err)
    # 3x3 stride-1 convs of 128+ channels after the layer: layer3.0.conv2, 3.1.conv1/2, 4.0.conv2, 4.1.conv1/2
    assert len(alone) == sum(op.op == "batchnorm" and not cnn.folded(op) for op in post.ops()) > 0
    assert len(wino) == {"layer3.1.conv1": 4, "layer4.1.conv1": 1}.get(layer, 6)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 2), c=st.integers(1, 9), o=st.integers(1, 7), h=st.integers(1, 9), w=st.integers(1, 9),
       pads=st.tuples(*[st.integers(0, 2)] * 4), bias=st.booleans(), seed=st.integers(0, 2**31))
def test_winograd_conv_matches_a_float64_convolution(n, c, o, h, w, pads, bias, seed):
    """Winograd F(2x2, 3x3) against a plain float64 loop over the 9 taps, odd and even output
    sizes, any padding: float32 roundoff (RMS error under 1e-6 of the RMS of the convolution of
    |x| by |w|, the scale of a float32 rounding bound; an output near 0 by cancellation has no
    relative accuracy to ask of any float32 method)."""
    top, left, bottom, right = pads
    oh, ow = h + top + bottom - 2, w + left + right - 2
    if oh < 1 or ow < 1:
        return
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    wt = rng.standard_normal((o, c, 3, 3))
    b = rng.standard_normal(o).astype(np.float32) if bias else None
    got = _winograd_conv(x, _winograd_weights(wt), b, pads)
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (top, bottom), (left, right)))
    def conv(x, w):
        return sum(np.einsum("nchw,oc->nhwo", x[:, :, i:i + oh, j:j + ow], w[:, :, i, j])
                   for i in range(3) for j in range(3))

    want = conv(xp, wt) + (0 if b is None else b)
    scale = conv(np.abs(xp), np.abs(wt)) + (0 if b is None else np.abs(b))
    assert got.shape == (n, oh, ow, o) and got.dtype == np.float32
    err = np.sqrt(np.mean((got - want) ** 2) / np.mean(scale ** 2))
    assert err < 1e-6, err


def test_float64_rerun_is_the_simulators_arithmetic(monkeypatch):
    """``products="float64"`` (the re-run of choices that barely move the outputs) computes every
    op as the simulator does, float64 ops on the float32 values each rounded to float32: outputs
    equal to the simulator's up to the summation order of float64 products (bit-equal when
    measured; asked within 1e-9 relative RMS, as a float64 sum in another order may round one
    float32 value the other way), with batch norms far from identity (a batch norm on float32
    arrays in float32 arithmetic was 1.5e-7 relative RMS off, nearly the float32 tail's own 5e-7).
    Its convolutions run channels last, the 128+ channel ones as float64 Winograd, none folded."""
    wino = []
    monkeypatch.setattr(tail_cnn, "_winograd_conv", lambda *a: wino.append(a[1].dtype) or _winograd_conv(*a))
    g = load_model("resnet18", {"batch": 2, "resolution": 48, "width": 32})
    rng = np.random.default_rng(3)
    for op in g.ops():
        if op.op == "batchnorm":
            for t, lo, hi in zip(op.inputs[1:], (0.5, -0.3, -0.3, 0.5), (1.5, 0.3, 0.3, 2.0)):
                g.set_data(t, rng.uniform(lo, hi, g.tensors[t].shape).astype(np.float32))
    g, ref = float_values(g, synthetic(g, 2, 0))
    for layer in ("conv1", "layer3.0.conv1"):
        post = subgraph(g, nx.descendants(g.nx, layer), "tail")
        feed = {n: (v * (1 + 1e-4 * rng.standard_normal(v.shape))).astype(np.float32)
                for n, v in boundary_values(post, ref).items()}
        exact = sim.run(post, {n: v.copy() for n, v in feed.items()}, metrics=False, float_reference=False).output_values
        wino.clear()
        wide = float32_outputs(post, {n: v.copy() for n, v in feed.items()}, products="float64")
        assert wino and set(wino) == {np.dtype(np.float64)} and not ChannelsLast(post, "float64").bn_of
        fast = float32_outputs(post, {n: v.copy() for n, v in feed.items()})
        for n in post.outputs:
            want = np.asarray(exact[n], np.float64)
            rms = [np.sqrt(np.mean((y[n] - want) ** 2) / np.mean(want ** 2)) for y in (wide, fast)]
            assert rms[0] < 1e-9 < 1e-7 < rms[1], rms
            assert np.mean(wide[n] == want) > 0.999, np.mean(wide[n] == want)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 3), c=st.integers(1, 9), o=st.integers(1, 7), h=st.integers(3, 12), k=st.sampled_from([1, 2, 3]),
       stride=st.integers(1, 2), dilation=st.integers(1, 2), pads=st.tuples(*[st.integers(0, 2)] * 4),
       bias=st.booleans(), seed=st.integers(0, 2**31))
@example(n=2, c=64, o=64, h=32, k=3, stride=1, dilation=1, pads=(1, 1, 1, 1), bias=True, seed=0)  # 4 row blocks
def test_patch_conv_equals_the_whole_patch_matrix_product(n, c, o, h, k, stride, dilation, pads, bias, seed):
    """A convolution that is not Winograd, its patches made block by block inside the product's
    tasks (hwsim.sim.refconv), equals the product of the whole channels-last patch matrix
    (kernel_api.im2col) in the same row blocks (refblas.dot) plus the bias, bit for bit; and both
    are a float64 convolution within float32 roundoff."""
    from types import SimpleNamespace

    from hwsim import kernel_api
    from hwsim.sim import refblas

    if (h + pads[0] + pads[2] - dilation * (k - 1) - 1) < 0 or (h + pads[1] + pads[3] - dilation * (k - 1) - 1) < 0:
        return
    rng = np.random.default_rng(seed)
    op = SimpleNamespace(stride=(stride, stride), padding=pads, dilation=(dilation, dilation), groups=1)
    x = rng.standard_normal((n, h, h, c)).astype(np.float32).transpose(0, 3, 1, 2)  # channels-last memory
    w = rng.standard_normal((o, c, k, k)).astype(np.float32)
    b = rng.standard_normal(o).astype(np.float32) if bias else None
    wk = np.ascontiguousarray(w.transpose(2, 3, 1, 0).reshape(-1, o))
    got = tail_cnn._conv(op, x, (k, k), (wk, b, None))
    cols = kernel_api.im2col(x, (k, k), op.stride, op.padding, op.dilation, None, np.float32, 0, True)
    want = refblas.dot(cols.reshape(-1, cols.shape[-1]), wk) + (0 if b is None else b)
    np.testing.assert_array_equal(got.transpose(0, 2, 3, 1).reshape(want.shape), want)
    cols64 = cols.reshape(-1, cols.shape[-1]).astype(np.float64)
    exact = cols64 @ wk.astype(np.float64) + (0 if b is None else b)
    scale = np.abs(cols64) @ np.abs(wk.astype(np.float64)) + (0 if b is None else np.abs(b))
    assert np.all(np.abs(want - exact) <= 1e-6 * scale + 1e-30)
