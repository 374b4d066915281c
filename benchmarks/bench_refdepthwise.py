"""Speed of the float reference's depthwise kernel (hwsim.kernels.refdepthwise), another version vs this one (not a test).

Usage: ``python benchmarks/bench_refdepthwise.py BASE_DIR NEW_FILE``: BASE_DIR holds another ``hwsim`` package
(``git archive <commit> hwsim | tar -x -C BASE_DIR``), NEW_FILE this tree's hwsim/kernels/refdepthwise.py. The 17
depthwise convs of MobileNetV2 at batch 8 (3x3, float32 sums, biased input), checked bit-identical (serial and 2
threads), then the serial kernels' thread CPU for all 17, alternating, 8 rounds.
"""
import sys, time, importlib.util
import numpy as np
sys.path.insert(0, sys.argv[1])
from hwsim.kernels import refdepthwise as R
spec = importlib.util.spec_from_file_location("newdw", sys.argv[2]); N = importlib.util.module_from_spec(spec); spec.loader.exec_module(N)
shapes = [(32,112,1),(96,112,2),(144,56,1),(144,56,2),(192,28,1),(192,28,1),(192,28,2),(384,14,1),(384,14,1),(384,14,1),(384,14,1),(576,14,1),(576,14,1),(576,14,2),(960,7,1),(960,7,1),(960,7,1)]
rng = np.random.default_rng(0)
cases = []
for c, h, s in shapes:
    xh = rng.standard_normal((8, h, h, c)).astype(np.float32); wt = rng.standard_normal((3,3,c)).astype(np.float32)
    ib = rng.standard_normal(c); ob = rng.standard_normal(c); oh = (h + 2 - 3)//s + 1
    cases.append((xh, ib, wt, s, ob, oh))
def call(mod, kern, xh, ib, wt, s, ob, oh, threads):
    out = np.empty((8, oh, oh, xh.shape[3]), np.float32); out32 = np.empty_like(out)
    kern(xh, ib, True, wt, s, s, 1, 1, 1, 1, ob, out, out32, np.zeros(1, np.int64), threads)
    return out, out32
for cs in cases:
    a = call(R, R._depthwise_ref_1, *cs, 1); bb = call(N, N._depthwise_ref_1, *cs, 1)
    assert np.array_equal(a[0], bb[0]) and np.array_equal(a[1], bb[1])
    a = call(N, N._depthwise_ref, *cs, 2); assert np.array_equal(a[0], bb[0]) and np.array_equal(a[1], bb[1])
print("bit-identical on all 17 shapes (serial, 2 threads)")
for rnd in range(8):
    for name, k in (("old", R._depthwise_ref_1), ("new", N._depthwise_ref_1)):
        c0 = time.thread_time()
        for cs in cases: call(None, k, *cs, 1)
        print(name, f"{(time.thread_time()-c0)*1e3:.1f} ms thread-cpu", end="  ")
    print()
