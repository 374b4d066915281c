"""Traffic: the output-stationary block shape."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim.cost import traffic


@settings(max_examples=200, deadline=None)
@given(m=st.integers(1, 200_000), n=st.integers(1, 4096), tile=st.integers(1, 100_000),
       w=st.floats(1, 1e8), i=st.floats(1, 1e8))
def test_output_block_never_moves_more_than_the_square_block(m, n, tile, w, i):
    wp, ip, splits = traffic._output_tile(m, n, float(tile), w, i)
    a = max(1.0, min(m, max(math.floor(math.sqrt(tile)), tile // n)))
    b = max(1.0, min(n, tile // a))
    assert splits == 1 and wp >= 1 and ip >= 1
    assert w * wp + i * ip <= w * math.ceil(m / a) + i * math.ceil(n / b) + 1e-6 * (w + i)


def test_weight_heavy_layer_keeps_all_rows_and_splits_channels():
    # AlexNet CONV3 at batch 4, half of a 108 KB buffer holding 16-bit partial sums: 676 output rows, 384 channels, 1.77 MB
    # of weights against 0.35 MB of inputs: every row in the block, the weights pass once, the inputs 10 times
    wp, ip, _ = traffic._output_tile(676, 384, 55296 / 2, 1_769_472, 346_112)
    assert wp == 1 and ip == math.ceil(384 / (27648 // 676))
