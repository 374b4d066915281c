"""ONNX Einsum -> IR ops (registered into :data:`hwsim.graph.onnx_ops.CONVERTERS`).

- One operand: no products, so no MACs: a ``reduce`` (sum over the indices the output drops,
  priced per input element) and a ``transpose``; a repeated index (diagonal, trace) goes through
  the generic path (:mod:`hwsim.graph.onnx_generic`: ``onnx.reference``, priced per output element).
- Two operands: a batched matmul. Every subscript is a batch index (both operands and the
  output), a contracted index (both operands, not the output), a free index of one operand (and
  the output), or an index summed inside one operand only (summed first by a ``reduce``).
  Each operand is transposed to (batch, free, contracted) / (batch, contracted, free) and reshaped
  to 3-D (2-D without batch indices), multiplied by ``matmul`` (``linear`` when the second operand
  is a constant and there is no batch index), and the product is reshaped and transposed to the
  output's order. The MACs are those of the matmul: ``batch x free_a x free_b x contracted``.
- Refused naming the node: three or more operands, a subscript repeated inside one operand of a
  two-operand Einsum (a diagonal), and indices whose sizes differ between the operands
  (broadcasting of size-1 dims).
"""

from __future__ import annotations

import math
import string

import numpy as np

from hwsim.graph import ops as O
from hwsim.graph.onnx_ops import _one, attrs, converter
from hwsim.graph.onnx_values import Act, Const


def parse_equation(eq: str, ranks: list[int]) -> tuple[list[str], str]:
    """(subscripts per operand, output subscripts) with ``...`` spelled out as unused letters;
    ValueError when an operand's subscripts do not fit its rank."""
    eq = eq.replace(" ", "")
    lhs, arrow, out = eq.partition("->")
    subs = lhs.split(",")
    if len(subs) != len(ranks):
        raise ValueError(f"equation '{eq}' names {len(subs)} operands, the node has {len(ranks)}")
    free = [c for c in string.ascii_letters if c not in eq]
    n_ell = max((r - (len(s) - 3) for s, r in zip(subs, ranks) if "..." in s), default=0)
    ell = "".join(free[:n_ell])
    spelled = []
    for s, r in zip(subs, ranks):
        if "..." in s:
            k = r - (len(s) - 3)
            s = s.replace("...", ell[n_ell - k:])
        if len(s) != r:
            raise ValueError(f"subscripts '{s}' do not fit an operand of rank {r}")
        spelled.append(s)
    if arrow:
        out = out.replace("...", ell)
    else:  # implicit output: the ellipsis, then the letters seen once, in alphabetical order
        joined = "".join(spelled)
        out = ell + "".join(sorted(c for c in set(joined) if joined.count(c) == 1 and c not in ell))
    return spelled, out


@converter("Einsum")
def _einsum(ctx, node):
    from hwsim.graph.onnx_generic import convert_generic

    eq = attrs(node)["equation"]
    eq = eq.decode() if isinstance(eq, bytes) else eq
    if len(node.input) == 1:
        _one_operand(ctx, node, eq, convert_generic)
        return
    if len(node.input) != 2:
        raise ctx.fail(node, f"a MAC op in a form hwsim has no kernel for: Einsum of {len(node.input)} operands "
                             f"('{eq}'; hwsim runs two-operand Einsum as a batched matmul)")
    try:
        (sa, sb), out = parse_equation(eq, [len(ctx.shape(n)) for n in node.input])
    except ValueError as exc:
        raise ctx.fail(node, str(exc)) from None
    if len(set(sa)) != len(sa) or len(set(sb)) != len(sb):
        raise ctx.fail(node, f"a MAC op in a form hwsim has no kernel for: a subscript repeated inside one "
                             f"operand of '{eq}' (a diagonal)")
    sizes: dict[str, int] = {}
    for s, n in ((sa, node.input[0]), (sb, node.input[1])):
        for c, d in zip(s, ctx.shape(n)):
            if sizes.setdefault(c, d) != d:
                raise ctx.fail(node, f"index '{c}' of '{eq}' has sizes {sizes[c]} and {d} (broadcasting)")
    a, sa = _sum_alone(ctx, node, 0, sa, sb + out)
    b, sb = _sum_alone(ctx, node, 1, sb, sa + out)
    batch = [c for c in out if c in sa and c in sb]
    contract = [c for c in sa if c in sb and c not in out]
    free_a = [c for c in sa if c not in sb]
    free_b = [c for c in sb if c not in sa]
    dims = lambda cs: math.prod(sizes[c] for c in cs)  # noqa: E731
    p = node.output[0]
    m, k, n = dims(free_a), dims(contract), dims(free_b)
    lead = (dims(batch),) if batch else ()
    a2 = _arrange(ctx, node, a, sa, batch + free_a + contract, lead + (m, k), ".a")
    if not batch and isinstance(ctx.values.get(node.input[1]), Const) and b == node.input[1]:
        w = np.asarray(ctx.values[b].value).transpose([sb.index(c) for c in contract + free_b]).reshape(k, n)
        ctx.values[f"{p}.einsum_w"] = Const(np.ascontiguousarray(w.T), True)
        wt = ctx.place(f"{p}.einsum_w", ctx.values[f"{p}.einsum_w"], "weight")
        y = _one(ctx, node, O.Linear, [a2, wt], ".linear", out=f"{p}.mm")
    else:
        b2 = _arrange(ctx, node, b, sb, batch + contract + free_b, lead + (k, n), ".b")
        y = _one(ctx, node, O.MatMul, [a2, b2], ".matmul", out=f"{p}.mm")
    order = batch + free_a + free_b
    y = _one(ctx, node, O.Reshape, [y], ".unflatten", out=f"{p}.full" if order != list(out) else p,
             shape=tuple(sizes[c] for c in order))
    if order != list(out):
        _one(ctx, node, O.Transpose, [y], ".order", out=p, perm=tuple(order.index(c) for c in out))


def _one_operand(ctx, node, eq: str, convert_generic) -> None:
    """No products: sums over the indices the output drops (``reduce``) and a transpose; a
    repeated index (diagonal, trace) goes through the generic path."""
    try:
        (s,), out = parse_equation(eq, [len(ctx.shape(node.input[0]))])
    except ValueError as exc:
        raise ctx.fail(node, str(exc)) from None
    if len(set(s)) != len(s):
        convert_generic(ctx, node, no_macs=True)
        return
    kept = "".join(c for c in s if c in out)
    last = kept == out  # the sum (if any) writes the output
    x, s = _sum_alone(ctx, node, 0, s, out, node.output[0] if last else None)
    if s != out:
        _one(ctx, node, O.Transpose, [ctx.act(x)], ".order", perm=tuple(s.index(c) for c in out))
    elif x == node.input[0]:  # neither sum nor transpose: an alias, as Identity
        ctx.values[node.output[0]] = ctx.values[x]


def _sum_alone(ctx, node, i: int, s: str, others: str, out: str | None = None) -> tuple[str, str]:
    """Operand ``i`` with the indices no other operand nor the output reads summed out first (into
    tensor ``out`` when given)."""
    x = node.input[i]
    alone = [j for j, c in enumerate(s) if c not in others]
    if not alone:
        return x, s
    y = _one(ctx, node, O.Reduce, [ctx.act(x)], f".sum{i}", out=out or f"{node.output[0]}.sum{i}", fn="sum",
             axes=tuple(alone), keepdims=False)
    return y, "".join(c for j, c in enumerate(s) if j not in alone)


def _arrange(ctx, node, x: str, s: str, order: list[str], shape: tuple[int, ...], suffix: str) -> str:
    """Operand ``x`` (subscripts ``s``) transposed to ``order`` and reshaped to ``shape``."""
    t = ctx.act(x) if not isinstance(ctx.values.get(x), Act) else ctx.values[x].name
    perm = tuple(s.index(c) for c in order)
    p = node.output[0]
    if perm != tuple(range(len(s))):
        t = _one(ctx, node, O.Transpose, [t], f"{suffix}.perm", out=f"{p}{suffix}.perm", perm=perm)
    if ctx.g.tensors[t].shape != shape:
        t = _one(ctx, node, O.Reshape, [t], f"{suffix}.flat", out=f"{p}{suffix}.flat", shape=shape)
    return t
