"""Signed binary with a per-tensor spec (axis None) uses output channels (axis 0) as regions."""

import numpy as np

from hwsim import formats


def test_axis_none_means_output_channel_regions():
    rng = np.random.default_rng(1)
    w = rng.standard_normal((6, 5, 3, 3))
    w[:3] += 0.5  # positive-sum regions
    w[3:] -= 0.5  # negative-sum regions
    f = formats.get("signed_binary")
    q_none = f.quantize(w, scale=0.4, axis=None)
    q_zero = f.quantize(w, scale=0.4, axis=0)
    np.testing.assert_array_equal(q_none, q_zero)
    assert (q_none[:3] >= 0).all() and (q_none[3:] <= 0).all()
    assert (q_none != 0).any()
