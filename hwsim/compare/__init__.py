"""Side-by-side INT vs FP (and MX, ternary, pow2) comparison: hardware cost and accuracy."""
