"""Cost-model constants that no target sets: the one table, each with its source or "assumption".

Everything a target can differ in lives in ``targets/*.yaml`` (each field cited there); what
remains here is a modelling choice shared by every target.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Constant:
    """A number and where it comes from."""

    value: float
    source: str


#: width of the adder that sums table look-up results in the LUT-GEMM path of codebook weights
LUT_ADD_BITS = Constant(16, "assumption: look-up results (int8 centroid dot products) are summed in "
                            "16-bit adders, as T-MAC / GPTVQ-style LUT kernels keep int16 partial sums")
#: energy of one non-MAC elementwise op (add, compare, scale) as a fraction of a MAC in its format
ELEMENTWISE_OP_MAC_FRACTION = Constant(0.5, "assumption: an elementwise op is about the adder half of "
                                            "a MAC (no multiplier)")
