"""Model families for convolutional networks: ResNet (basic / bottleneck), MobileNet v1/v2, AlexNet, VGG, single conv.

Definitions follow torchvision exactly (layer shapes, strides, where batch-norm sits), so the MAC
and parameter counts match the published ones.
"""

from __future__ import annotations

from hwsim.graph.builder import Builder
from hwsim.errors import ConfigError
from hwsim.graph.ir import Graph


def resnet(name: str, block: str = "basic", layers=(2, 2, 2, 2), num_classes: int = 1000,
           batch: int = 1, resolution: int = 224, width: int = 64) -> Graph:
    """ResNet v1.5 (stride in the 3x3 conv of bottlenecks, as torchvision)."""
    if block not in ("basic", "bottleneck"):
        raise ConfigError(f"model {name!r}: block={block!r} must be basic or bottleneck (e.g. {name}:block=basic)")
    b = Builder(name)
    x = b.input("input", (batch, 3, resolution, resolution))
    x = b.act(b.bn(b.conv(x, width, 7, "conv1", stride=2, pad=3), "bn1"), "relu", "relu")
    x = b.pool(x, "max", 3, 2, "maxpool", pad=1)
    expansion = 1 if block == "basic" else 4
    in_ch = width
    for stage, n_blocks in enumerate(layers):
        planes = width * 2 ** stage
        for i in range(n_blocks):
            stride = 2 if stage > 0 and i == 0 else 1
            p = f"layer{stage + 1}.{i}"
            identity = x
            if block == "basic":
                y = b.act(b.bn(b.conv(x, planes, 3, f"{p}.conv1", stride=stride), f"{p}.bn1"), "relu", f"{p}.relu1")
                y = b.bn(b.conv(y, planes, 3, f"{p}.conv2"), f"{p}.bn2")
            else:
                y = b.act(b.bn(b.conv(x, planes, 1, f"{p}.conv1"), f"{p}.bn1"), "relu", f"{p}.relu1")
                y = b.act(b.bn(b.conv(y, planes, 3, f"{p}.conv2", stride=stride), f"{p}.bn2"), "relu", f"{p}.relu2")
                y = b.bn(b.conv(y, planes * 4, 1, f"{p}.conv3"), f"{p}.bn3")
            if stride != 1 or in_ch != planes * expansion:
                identity = b.bn(b.conv(x, planes * expansion, 1, f"{p}.downsample.0", stride=stride),
                                f"{p}.downsample.1")
            x = b.act(b.binary(y, identity, "add", f"{p}.add"), "relu", f"{p}.relu")
            in_ch = planes * expansion
    x = b.flatten(b.gap(x, "avgpool"), "flatten")
    b.output(b.linear(x, num_classes, "fc"))
    return b.g


def _make_divisible(v: float, divisor: int = 8) -> int:
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


def mobilenet_v2(name: str, width_mult: float = 1.0, num_classes: int = 1000, batch: int = 1,
                 resolution: int = 224) -> Graph:
    """MobileNetV2 (Sandler et al. 2018) as torchvision builds it (ReLU6, dropout omitted)."""
    b = Builder(name)
    x = b.input("input", (batch, 3, resolution, resolution))
    settings = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                (6, 160, 3, 2), (6, 320, 1, 1)]
    in_ch = _make_divisible(32 * width_mult)
    last = _make_divisible(1280 * max(1.0, width_mult))
    x = b.act(b.bn(b.conv(x, in_ch, 3, "features.0.0", stride=2), "features.0.1"), "relu6", "features.0.2")
    idx = 1
    for t, c, n, s in settings:
        out_ch = _make_divisible(c * width_mult)
        for i in range(n):
            p, stride, hidden = f"features.{idx}", (s if i == 0 else 1), in_ch * t
            y, j = x, 0
            if t != 1:
                y = b.act(b.bn(b.conv(y, hidden, 1, f"{p}.conv.0.0"), f"{p}.conv.0.1"), "relu6", f"{p}.conv.0.2")
                j = 1
            y = b.act(b.bn(b.conv(y, hidden, 3, f"{p}.conv.{j}.0", stride=stride, groups=hidden),
                           f"{p}.conv.{j}.1"), "relu6", f"{p}.conv.{j}.2")
            y = b.bn(b.conv(y, out_ch, 1, f"{p}.conv.{j + 1}"), f"{p}.conv.{j + 2}")
            x = b.binary(x, y, "add", f"{p}.add") if stride == 1 and in_ch == out_ch else y
            in_ch, idx = out_ch, idx + 1
    x = b.act(b.bn(b.conv(x, last, 1, f"features.{idx}.0"), f"features.{idx}.1"), "relu6", f"features.{idx}.2")
    x = b.flatten(b.gap(x, "avgpool"), "flatten")
    b.output(b.linear(x, num_classes, "classifier.1"))
    return b.g


def mobilenet_v1(name: str, width_mult: float = 1.0, num_classes: int = 1000, batch: int = 1,
                 resolution: int = 224) -> Graph:
    """MobileNet v1 (Howard et al. 2017, Table 1): a 3x3 stem, 13 depthwise-separable blocks (depthwise
    3x3 + batch-norm + ReLU6, pointwise 1x1 + batch-norm + ReLU6), global pool, a 1000-way classifier
    with bias (the 1x1 conv of TF-slim's mobilenet_v1). 1.0 at 224x224: 568,740,352 MACs ("569
    million mult-adds", Table 8) and 4,231,976 parameters ("4.2 million")."""
    b = Builder(name)
    x = b.input("input", (batch, 3, resolution, resolution))

    def ch(c):
        return max(8, int(c * width_mult))
    x = b.act(b.bn(b.conv(x, ch(32), 3, "conv0", stride=2), "conv0.bn"), "relu6", "conv0.relu")
    in_ch = ch(32)
    blocks = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)] + [(512, 1)] * 5 + [(1024, 2), (1024, 1)]
    for i, (out, stride) in enumerate(blocks, 1):
        p = f"block{i}"
        x = b.act(b.bn(b.conv(x, in_ch, 3, f"{p}.dw", stride=stride, groups=in_ch), f"{p}.dw.bn"), "relu6",
                  f"{p}.dw.relu")
        x = b.act(b.bn(b.conv(x, ch(out), 1, f"{p}.pw"), f"{p}.pw.bn"), "relu6", f"{p}.pw.relu")
        in_ch = ch(out)
    x = b.flatten(b.gap(x, "avgpool"), "flatten")
    b.output(b.linear(x, num_classes, "classifier"))
    return b.g


def conv2d(name: str, c: int = 64, h: int = 56, w: int = 56, k: int = 64, r: int = 3, stride: int = 1,
           pad: int | None = None, groups: int = 1, batch: int = 1, bias: bool = False) -> Graph:
    """One convolution: input (batch, c, h, w), k output channels, r x r kernel."""
    if r > min(h, w):
        raise ConfigError(f"model {name!r}: kernel r={r} is larger than the input h={h} x w={w}; "
                          f"use r <= {min(h, w)} or a larger input")
    b = Builder(name)
    x = b.input("input", (batch, c, h, w))
    b.output(b.conv(x, k, r, "conv", stride=stride, pad=pad, groups=groups, bias=bias))
    return b.g


def gemm(name: str, m: int = 512, k: int = 4096, n: int = 4096, bias: bool = False) -> Graph:
    """One linear layer: activations (m, k) times weights (n, k) transposed -> (m, n)."""
    b = Builder(name)
    x = b.input("input", (m, k))
    b.output(b.linear(x, n, "gemm", bias=bias))
    return b.g


def alexnet(name: str, batch: int = 1, resolution: int = 227, num_classes: int = 1000,
            classifier: bool = True) -> Graph:
    """AlexNet as Krizhevsky et al. 2012 built it (two-group CONV2/4/5, biases, no LRN): 2,334,080 CONV
    weights and 665,784,864 CONV MACs at 227x227, as Eyeriss (Chen et al. JSSC'17) ran it.
    ``classifier=false`` keeps the five CONV layers with their ReLUs and pools only."""
    b = Builder(name)
    x = b.input("input", (batch, 3, resolution, resolution))
    for i, (out, k, stride, pad, groups, pool) in enumerate(
            [(96, 11, 4, 0, 1, True), (256, 5, 1, 2, 2, True), (384, 3, 1, 1, 1, False),
             (384, 3, 1, 1, 2, False), (256, 3, 1, 1, 2, True)], 1):
        x = b.act(b.conv(x, out, k, f"conv{i}", stride=stride, pad=pad, groups=groups, bias=True), "relu", f"relu{i}")
        if pool and (classifier or i < 5):
            x = b.pool(x, "max", 3, 2, f"pool{i}")
    if classifier:
        x = b.flatten(x, "flatten")
        for j, width in enumerate((4096, 4096), 6):
            x = b.act(b.linear(x, width, f"fc{j}"), "relu", f"relu{j}")
        b.output(b.linear(x, num_classes, "fc8"))
    else:
        b.output(x)
    return b.g


def vgg16(name: str, batch: int = 1, resolution: int = 224, num_classes: int = 1000,
          classifier: bool = True) -> Graph:
    """VGG-16 (Simonyan and Zisserman 2015, configuration D, as torchvision.models.vgg16 without dropout).
    ``classifier=false`` keeps the 13 CONV layers with their ReLUs and the pools between stages (the part
    Eyeriss measured: Chen et al. JSSC'17, Sec. VI-B)."""
    b = Builder(name)
    x = b.input("input", (batch, 3, resolution, resolution))
    for s, (width, n) in enumerate([(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)], 1):
        for i in range(1, n + 1):
            x = b.act(b.conv(x, width, 3, f"conv{s}_{i}", pad=1, bias=True), "relu", f"relu{s}_{i}")
        if classifier or s < 5:
            x = b.pool(x, "max", 2, 2, f"pool{s}")
    if classifier:
        x = b.flatten(x, "flatten")
        for j in (6, 7):
            x = b.act(b.linear(x, 4096, f"fc{j}"), "relu", f"relu{j}")
        b.output(b.linear(x, num_classes, "fc8"))
    else:
        b.output(x)
    return b.g
