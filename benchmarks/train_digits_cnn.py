"""Train the small CNN shipped as ``models/digits_cnn.onnx`` on scikit-learn's digits (plain numpy).

Network (NCHW, input ``image`` of shape (batch, 1, 8, 8), pixel values / 16 in [0, 1])::

    conv1 3x3 1->8 pad 1 + ReLU + maxpool 2   -> (8, 4, 4)
    conv2 3x3 8->16 pad 1 + ReLU + maxpool 2  -> (16, 2, 2)
    flatten -> fc1 64->32 + ReLU -> fc2 32->10 (logits)

Data: the 1,797 8x8 digit images; a stratified 80/20 split with seed 0. The 360 held-out images
go to ``models/digits_test.npz`` and 32 training images (a calibration set, never the test set)
to ``models/digits_calib.npz``; each file holds ``image`` (float32, N x 1 x 8 x 8) and
``labels`` (int64). Training: SGD with momentum 0.9, batch 32, 60 epochs, lr 0.05 with cosine
decay, He-normal init, seed 0. Everything is deterministic; the script prints the held-out
accuracy it reached (recorded in docs/solver_results.md).

Run: ``python benchmarks/train_digits_cnn.py [--out models]`` (about 20 s on one core).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

SEED = 0


# ------------------------------------------------------------------ data
def load_split(seed: int = SEED):
    """(x_train, x_test, y_train, y_test): stratified 80/20 split of sklearn digits."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None]
    y = d.target.astype(np.int64)
    return train_test_split(x, y, test_size=0.2, random_state=seed, stratify=y)


# ------------------------------------------------------------------ layers (forward + backward)
def im2col(x: np.ndarray, k: int = 3, pad: int = 1) -> np.ndarray:
    """(N, C, H, W) -> (N, H, W, C*k*k) patches for a stride-1 'same' conv."""
    n, c, h, w = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    cols = np.empty((n, h, w, c, k, k), x.dtype)
    for i in range(k):
        for j in range(k):
            cols[:, :, :, :, i, j] = xp[:, :, i:i + h, j:j + w].transpose(0, 2, 3, 1)
    return cols.reshape(n, h, w, c * k * k)


def col2im(dcols: np.ndarray, shape, k: int = 3, pad: int = 1) -> np.ndarray:
    n, c, h, w = shape
    d = dcols.reshape(n, h, w, c, k, k)
    dxp = np.zeros((n, c, h + 2 * pad, w + 2 * pad), dcols.dtype)
    for i in range(k):
        for j in range(k):
            dxp[:, :, i:i + h, j:j + w] += d[:, :, :, :, i, j].transpose(0, 3, 1, 2)
    return dxp[:, :, pad:pad + h, pad:pad + w]


def conv_fwd(x, w, b):
    cols = im2col(x)
    y = cols @ w.reshape(w.shape[0], -1).T + b  # (N, H, W, O)
    return y.transpose(0, 3, 1, 2), cols


def conv_bwd(dy, cols, x_shape, w):
    dyr = dy.transpose(0, 2, 3, 1)  # (N, H, W, O)
    dw = np.einsum("nhwo,nhwk->ok", dyr, cols).reshape(w.shape)
    db = dyr.sum(axis=(0, 1, 2))
    dx = col2im(dyr @ w.reshape(w.shape[0], -1), x_shape)
    return dx, dw, db


def pool_fwd(x):
    n, c, h, w = x.shape
    r = x.reshape(n, c, h // 2, 2, w // 2, 2)
    y = r.max(axis=(3, 5))
    mask = r == y[:, :, :, None, :, None]
    mask &= np.cumsum(np.cumsum(mask, 3), 5) == 1  # first max only (ties)
    return y, mask


def pool_bwd(dy, mask):
    n, c, h2, _, w2, _ = mask.shape
    return (mask * dy[:, :, :, None, :, None]).reshape(n, c, h2 * 2, w2 * 2)


def forward(p, x, keep=False):
    a1, c1 = conv_fwd(x, p["conv1.weight"], p["conv1.bias"])
    r1 = np.maximum(a1, 0)
    p1, m1 = pool_fwd(r1)
    a2, c2 = conv_fwd(p1, p["conv2.weight"], p["conv2.bias"])
    r2 = np.maximum(a2, 0)
    p2, m2 = pool_fwd(r2)
    f = p2.reshape(len(x), -1)
    h = f @ p["fc1.weight"].T + p["fc1.bias"]
    hr = np.maximum(h, 0)
    logits = hr @ p["fc2.weight"].T + p["fc2.bias"]
    return (logits, (x, c1, a1, m1, p1, c2, a2, m2, p2, f, h, hr)) if keep else logits


def backward(p, cache, dlogits):
    x, c1, a1, m1, p1, c2, a2, m2, p2, f, h, hr = cache
    g = {"fc2.weight": dlogits.T @ hr, "fc2.bias": dlogits.sum(0)}
    dh = (dlogits @ p["fc2.weight"]) * (h > 0)
    g["fc1.weight"], g["fc1.bias"] = dh.T @ f, dh.sum(0)
    dp2 = (dh @ p["fc1.weight"]).reshape(p2.shape)
    da2 = pool_bwd(dp2, m2) * (a2 > 0)
    dp1, g["conv2.weight"], g["conv2.bias"] = conv_bwd(da2, c2, p1.shape, p["conv2.weight"])
    da1 = pool_bwd(dp1, m1) * (a1 > 0)
    _, g["conv1.weight"], g["conv1.bias"] = conv_bwd(da1, c1, x.shape, p["conv1.weight"])
    return g


def init_params(rng):
    shapes = {"conv1.weight": (8, 1, 3, 3), "conv2.weight": (16, 8, 3, 3), "fc1.weight": (32, 64),
              "fc2.weight": (10, 32)}
    p = {}
    for name, s in shapes.items():
        fan_in = int(np.prod(s[1:]))
        p[name] = (rng.standard_normal(s) * np.sqrt(2.0 / fan_in)).astype(np.float64)
        p[name.replace("weight", "bias")] = np.zeros(s[0])
    return p


def softmax_xent(logits, y):
    z = logits - logits.max(1, keepdims=True)
    prob = np.exp(z)
    prob /= prob.sum(1, keepdims=True)
    loss = -np.log(prob[np.arange(len(y)), y] + 1e-12).mean()
    d = prob.copy()
    d[np.arange(len(y)), y] -= 1
    return loss, d / len(y)


def train(x, y, epochs: int = 60, batch: int = 32, lr: float = 0.05, seed: int = SEED):
    rng = np.random.default_rng(seed)
    p = init_params(rng)
    vel = {k: np.zeros_like(v) for k, v in p.items()}
    steps, step = epochs * int(np.ceil(len(x) / batch)), 0
    for epoch in range(epochs):
        order = rng.permutation(len(x))
        for i in range(0, len(x), batch):
            idx = order[i:i + batch]
            logits, cache = forward(p, x[idx].astype(np.float64), keep=True)
            _, d = softmax_xent(logits, y[idx])
            g = backward(p, cache, d)
            rate = lr * 0.5 * (1 + np.cos(np.pi * step / steps))
            for k in p:
                vel[k] = 0.9 * vel[k] - rate * (g[k] + 1e-4 * p[k] * k.endswith("weight"))
                p[k] += vel[k]
            step += 1
    return p


# ------------------------------------------------------------------ ONNX
def to_onnx(p: dict):
    """The trained network as a tiny ONNX model (opset 17, dynamic batch dim 'batch')."""
    from onnx import TensorProto, helper, numpy_helper

    inits = [numpy_helper.from_array(v.astype(np.float32), k) for k, v in p.items()]
    n = helper.make_node
    nodes = [
        n("Conv", ["image", "conv1.weight", "conv1.bias"], ["conv1.out"], name="conv1", pads=[1, 1, 1, 1], kernel_shape=[3, 3]),
        n("Relu", ["conv1.out"], ["relu1.out"], name="relu1"),
        n("MaxPool", ["relu1.out"], ["pool1.out"], name="pool1", kernel_shape=[2, 2], strides=[2, 2]),
        n("Conv", ["pool1.out", "conv2.weight", "conv2.bias"], ["conv2.out"], name="conv2", pads=[1, 1, 1, 1], kernel_shape=[3, 3]),
        n("Relu", ["conv2.out"], ["relu2.out"], name="relu2"),
        n("MaxPool", ["relu2.out"], ["pool2.out"], name="pool2", kernel_shape=[2, 2], strides=[2, 2]),
        n("Flatten", ["pool2.out"], ["flat.out"], name="flatten", axis=1),
        n("Gemm", ["flat.out", "fc1.weight", "fc1.bias"], ["fc1.out"], name="fc1", transB=1),
        n("Relu", ["fc1.out"], ["relu3.out"], name="relu3"),
        n("Gemm", ["relu3.out", "fc2.weight", "fc2.bias"], ["logits"], name="fc2", transB=1),
    ]
    graph = helper.make_graph(
        nodes, "digits_cnn",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 1, 8, 8])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 10])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="hwsim")
    model.ir_version = 8
    model.doc_string = ("CNN trained on scikit-learn digits by benchmarks/train_digits_cnn.py (numpy SGD, "
                        "seed 0); input pixels / 16 in [0, 1]")
    return model


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "models"))
    args = ap.parse_args(argv)
    import onnx

    xtr, xte, ytr, yte = load_split()
    p = train(xtr, ytr)
    acc_tr = (forward(p, xtr.astype(np.float64)).argmax(1) == ytr).mean()
    acc_te = (forward(p, xte.astype(np.float64)).argmax(1) == yte).mean()
    out = Path(args.out)
    model = to_onnx(p)
    onnx.checker.check_model(model)
    onnx.save(model, out / "digits_cnn.onnx")
    np.savez_compressed(out / "digits_test.npz", image=xte, labels=yte)
    np.savez_compressed(out / "digits_calib.npz", image=xtr[:32], labels=ytr[:32])
    print(f"train accuracy {acc_tr:.4f}, held-out accuracy {acc_te:.4f} on {len(yte)} images; "
          f"wrote {out / 'digits_cnn.onnx'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
