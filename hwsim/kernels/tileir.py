"""The LLVM IR of the GEMM micro-kernels of :mod:`hwsim.kernels.simdgemm`: one tile of int32 (or
float32) accumulators in registers over a block of K, and what happens to them after the block:
stored as accumulators (:func:`_tile`, :func:`_wtile`) or, after the last block, requantized in
the registers and stored as 8-bit codes (:func:`_tile_rq`, :func:`_wtile_rq`, onnxruntime's MLAS
``MlasRequantizeOutput``).

Two tile shapes (:class:`Shape`), both reading B in panels of NR = 16 columns:

* AVX2 (:data:`AVX2`): MR = 4 rows x 16 columns in eight 8-lane registers (ymm); multiply-adds
  VPMADDWD ("madd"), VPMADDUBSW + VPMADDWD ("maddubs", pairs saturate to int16), FMA ("fma32").
* AVX-512 (:data:`ZMM`): MRW = 8 rows x 32 columns (two panels) in sixteen 16-lane registers
  (zmm); VNNI multiply-adds VPDPBUSD ("dpbusd": uint8 quads times int8 quads, four exact
  products into each int32 lane) and VPDPWSSD ("dpwssd": int16 pairs, as "madd"), FMA
  ("fma32"); :data:`ZMM_SAT` the same tile with "maddubs" on zmm (AVX-512 BW). Only compiled
  where the host has AVX-512 F/BW and VNNI (the caller checks).

Written as LLVM IR through numba intrinsics: numba's loop vectorizer turns a tile loop into
32-bit multiplies, four times slower. Imports llvmlite and numba only.
"""

from typing import NamedTuple

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

NR = 16  # columns of a panel of B


class Shape(NamedTuple):
    """A register tile: ``rows`` rows of A, ``regs`` registers of ``lanes`` 32-bit lanes per row
    (``lanes * regs`` columns: ``lanes * regs // NR`` panels)."""
    rows: int
    lanes: int
    regs: int
    saturating: bool = False  # uint8 x int8 quads as VPMADDUBSW pairs (saturated to int16), not VPDPBUSD

    @property
    def panels(self) -> int:
        return self.lanes * self.regs // NR


AVX2, ZMM = Shape(4, 8, 2, saturating=True), Shape(8, 16, 2)
ZMM_SAT = ZMM._replace(saturating=True)  # the ZMM tile of the saturating pairs (VPMADDUBSW on zmm)
MR, MRW = AVX2.rows, ZMM.rows  # micro-tile rows of the two shapes
_I8, _I16, _I32, _I64 = (ir.IntType(w) for w in (8, 16, 32, 64))
_V8I32, _V16I16, _V32I8 = ir.VectorType(_I32, 8), ir.VectorType(_I16, 16), ir.VectorType(_I8, 32)
_V16I32, _V32I16 = ir.VectorType(_I32, 16), ir.VectorType(_I16, 32)
_F32 = ir.FloatType()


def _kind(a_dtype, b_dtype, shape=AVX2):
    """The multiply-add a (packed A element type, packed B element type) pair selects in a tile of
    ``shape``, or None. AVX2: int16 A pairs with int16, uint8 (widened by zero extension) or int8
    (sign extension) B pairs "madd" (VPMADDWD); uint8 A quads with int8 B quads "maddubs";
    float32 with float32 "fma32". ZMM: the same pairs "dpwssd" (VPDPWSSD), uint8 x int8 quads
    "dpbusd" (VPDPBUSD, exact; "maddubs" in a ``saturating`` shape), float32 "fma32"."""
    a, b = str(a_dtype), str(b_dtype)
    pair = "dpwssd" if shape.lanes == 16 else "madd"
    if a == "int16" and b in ("int16", "uint8", "int8"):
        return pair
    quad = "maddubs" if shape.saturating else "dpbusd"
    return {("uint8", "int8"): quad, ("float32", "float32"): "fma32"}.get((a, b))


_GROUP = {"madd": 2, "dpwssd": 2, "maddubs": 4, "dpbusd": 4, "fma32": 1}


def _tile_types(a, b, shape=AVX2):
    """(shape, kind, widening of B, B elements per register load, the load's LLVM type) of a tile
    of packed ``a`` by panels ``b`` (numba array types), or None when :func:`_kind` has none."""
    kind = _kind(a.dtype, b.dtype, shape)
    if kind is None:
        return None
    group = _GROUP[kind]
    widen = {"uint8": "zext", "int8": "sext"}.get(str(b.dtype)) if group == 2 else None
    per_reg = shape.lanes * group  # B elements of one register
    elem = _F32 if kind == "fma32" else ir.IntType(b.dtype.bitwidth)
    return shape, kind, widen, per_reg, ir.VectorType(elem, per_reg)


def _intrinsic_fns(mod, lanes):
    """The multiply-add functions of a tile of ``lanes`` lanes, by kind ("madd": VPMADDWD, "ub":
    VPMADDUBSW, of the register width)."""
    acc_i, acc_f = ir.VectorType(_I32, lanes), ir.VectorType(_F32, lanes)
    w16, w8 = ir.VectorType(_I16, 2 * lanes), ir.VectorType(_I8, 4 * lanes)
    get = lambda t, args, name: cgutils.get_or_insert_function(mod, ir.FunctionType(t, args), name)  # noqa: E731
    fns = {"fma32": get(acc_f, [acc_f] * 3, f"llvm.fma.v{lanes}f32")}
    if lanes == 8:
        fns["madd"] = get(acc_i, [w16, w16], "llvm.x86.avx2.pmadd.wd")
        fns["ub"] = get(w16, [w8, w8], "llvm.x86.avx2.pmadd.ub.sw")
    else:
        fns["madd"] = get(acc_i, [w16, w16], "llvm.x86.avx512.pmaddw.d.512")
        fns["ub"] = get(w16, [w8, w8], "llvm.x86.avx512.pmaddubs.w.512")
        fns["dpbusd"] = get(_V16I32, [_V16I32] * 3, "llvm.x86.avx512.vpdpbusd.512")
        fns["dpwssd"] = get(_V16I32, [_V16I32] * 3, "llvm.x86.avx512.vpdpwssd.512")
    return fns


def _b_regs(builder, types_, bp, panel_elems):
    """The tile's B registers of one step (``bp`` points at the step's row of the first panel;
    ``panel_elems`` the elements of one panel), widened and cast for the kind's multiply-add."""
    shape, kind, widen, per_reg, load_t = types_
    out = []
    for h in range(shape.regs):
        pan, col = divmod(h * shape.lanes, NR)
        off = builder.add(builder.mul(panel_elems, ir.Constant(_I64, pan)), ir.Constant(_I64, col * _GROUP[kind]))
        v = builder.load(builder.bitcast(builder.gep(bp, [off]), load_t.as_pointer()), align=1)
        if widen is not None:
            v = (builder.zext if widen == "zext" else builder.sext)(v, ir.VectorType(_I16, per_reg))
        if kind == "maddubs":
            v = builder.bitcast(v, ir.VectorType(_I8, 4 * shape.lanes))
        elif kind == "madd":
            v = builder.bitcast(v, _V16I16)
        elif kind in ("dpbusd", "dpwssd"):
            v = builder.bitcast(v, _V16I32)
        out.append(v)
    return out


def _step(builder, fns, kind, acc, bc, bv):
    """``acc`` plus one step's multiply-add of the broadcast A value ``bc`` by B register ``bv``."""
    if kind == "fma32":
        return builder.call(fns["fma32"], [bc, bv, acc])
    if kind in ("dpbusd", "dpwssd"):
        return builder.call(fns[kind], [acc, bc, bv])
    if kind == "maddubs":
        lanes = bc.type.count
        ones = ir.Constant(ir.VectorType(_I16, 2 * lanes), [1] * (2 * lanes))
        pairs = builder.call(fns["ub"], [builder.bitcast(bc, ir.VectorType(_I8, 4 * lanes)), bv])
        if lanes == 16:  # VPDPWSSD by ones: the two pairs and the accumulator in one instruction
            return builder.call(fns["dpwssd"], [acc, builder.bitcast(pairs, acc.type), builder.bitcast(ones, acc.type)])
        return builder.add(acc, builder.call(fns["madd"], [pairs, ones]))
    return builder.add(acc, builder.call(fns["madd"], [builder.bitcast(bc, _V16I16), bv]))


def emit_tile(context, builder, types_, aa, ba, oa, i0v, pv, q0v, q1v, fresh_v):
    """LLVM IR of the tile loop of :func:`_tile` / :func:`_wtile` (``types_`` from
    :func:`_tile_types`; ``aa``, ``ba``, ``oa`` numba array structs): leaves the builder after the
    loop and returns (the rows*regs accumulator registers, row r register h at regs*r+h, the
    pointers of their places in ``oa``, the row indices, the first column)."""
    shape, kind = types_[:2]
    flt = kind == "fma32"
    acc_t = ir.VectorType(_F32 if flt else _I32, shape.lanes)
    a_pitch = cgutils.unpack_tuple(builder, aa.strides)[0]  # bytes: ``a`` and ``out`` may be views
    b_k, b_w = cgutils.unpack_tuple(builder, ba.shape)[1:3]
    o_pitch = cgutils.unpack_tuple(builder, oa.strides)[0]
    i8p = _I8.as_pointer()
    fns = _intrinsic_fns(builder.module, shape.lanes)
    const = lambda v: ir.Constant(_I64, v)  # noqa: E731
    rows = [builder.add(i0v, const(r)) for r in range(shape.rows)]
    a_rows = [builder.bitcast(builder.gep(builder.bitcast(aa.data, i8p), [builder.mul(r, a_pitch)]),
                              (_F32 if flt else _I32).as_pointer()) for r in rows]
    panel_elems = builder.mul(b_k, b_w)
    b_base = builder.gep(ba.data, [builder.mul(pv, panel_elems)])
    col = builder.mul(pv, const(NR))
    optrs = [builder.bitcast(builder.gep(builder.bitcast(oa.data, i8p),
                                         [builder.add(builder.mul(r, o_pitch),
                                                      builder.mul(builder.add(col, const(shape.lanes * h)), const(4)))]),
                             acc_t.as_pointer()) for r in rows for h in range(shape.regs)]
    # a fresh tile starts from zeros and never reads ``out`` (a new array's pages are then
    # touched once, by the store, instead of a read fault and a copy-on-write fault)
    with builder.if_else(builder.icmp_signed("!=", fresh_v, ir.Constant(fresh_v.type, 0))) as (zero, keep):
        with zero:
            zero_bb = builder.basic_block
        with keep:
            loaded = [builder.load(ptr, align=4) for ptr in optrs]
            keep_bb = builder.basic_block
    init = []
    for v in loaded:
        ph = builder.phi(acc_t)
        ph.add_incoming(ir.Constant(acc_t, None), zero_bb)
        ph.add_incoming(v, keep_bb)
        init.append(ph)
    entry = builder.basic_block
    header, body, done = (builder.append_basic_block(f"tile.{s}") for s in ("header", "body", "done"))
    builder.branch(header)
    builder.position_at_end(header)
    q = builder.phi(_I64)
    q.add_incoming(q0v, entry)
    accs = [builder.phi(acc_t) for _ in init]
    for ph, v in zip(accs, init):
        ph.add_incoming(v, entry)
    builder.cbranch(builder.icmp_signed("<", q, q1v), body, done)
    builder.position_at_end(body)
    bv = _b_regs(builder, types_, builder.gep(b_base, [builder.mul(q, b_w)]), panel_elems)
    splat = ir.Constant(ir.VectorType(_I32, shape.lanes), [0] * shape.lanes)
    new = []
    for r in range(shape.rows):
        av = builder.load(builder.gep(a_rows[r], [q]), align=1)
        bc = builder.shuffle_vector(builder.insert_element(ir.Constant(acc_t, None), av, ir.Constant(_I32, 0)),
                                    ir.Constant(acc_t, None), splat)
        new += [_step(builder, fns, kind, accs[shape.regs * r + h], bc, bv[h]) for h in range(shape.regs)]
    q.add_incoming(builder.add(q, const(1)), builder.basic_block)
    for ph, v in zip(accs, new):
        ph.add_incoming(v, builder.basic_block)
    builder.branch(header)
    builder.position_at_end(done)
    return accs, optrs, rows, col


def _add_wide(builder, shape, accs, rows, col, oa, fresh_v):
    """Store the int32 registers into int64 ``oa``, sign-extended: ``out = acc`` where ``fresh_v``
    is set, else ``out += acc`` (a tile of a block of K whose int32 sums are exact, added into
    the int64 sum of the blocks before it)."""
    wide_t = ir.VectorType(_I64, shape.lanes)
    pitch = cgutils.unpack_tuple(builder, oa.strides)[0]
    i8p = _I8.as_pointer()
    ptrs = [builder.bitcast(builder.gep(builder.bitcast(oa.data, i8p),
                                        [builder.add(builder.mul(r, pitch),
                                                     builder.mul(builder.add(col, ir.Constant(_I64, shape.lanes * h)),
                                                                 ir.Constant(_I64, 8)))]),
                            wide_t.as_pointer()) for r in rows for h in range(shape.regs)]
    vals = [builder.sext(v, wide_t) for v in accs]
    with builder.if_else(builder.icmp_signed("!=", fresh_v, ir.Constant(fresh_v.type, 0))) as (first, later):
        with first:
            for v, ptr in zip(vals, ptrs):
                builder.store(v, ptr, align=8)
        with later:
            for v, ptr in zip(vals, ptrs):
                builder.store(builder.add(builder.load(ptr, align=8), v), ptr, align=8)


def _tile_intrinsic(shape):
    def tile(typingctx, a, b, out, i0, p, q0, q1, fresh):
        tt = _tile_types(a, b, shape)
        if tt is None or (str(out.dtype) == "int64" and tt[1] == "fma32"):
            return None
        to_int64 = str(out.dtype) == "int64"

        def codegen(context, builder, signature, args):
            arrs = [context.make_array(t)(context, builder, v) for t, v in zip(signature.args[:3], args[:3])]
            if not to_int64:
                accs, optrs, _, _ = emit_tile(context, builder, tt, *arrs, *args[3:])
                for v, ptr in zip(accs, optrs):
                    builder.store(v, ptr, align=4)
                return context.get_dummy_value()
            # int64 ``out``: the block's sums start from zero in the registers, then are added to it
            one = ir.Constant(args[7].type, 1)
            accs, _, rows, col = emit_tile(context, builder, tt, *arrs, *args[3:7], one)
            _add_wide(builder, shape, accs, rows, col, arrs[2], args[7])
            return context.get_dummy_value()

        return types.void(a, b, out, i0, p, q0, q1, fresh), codegen
    return tile


_TILE_DOC = """``{name}(a, b, out, i0, p, q0, q1, fresh)``: out[i0:i0+{rows}, NR*p:NR*p+{cols}] = (0 if
    ``fresh`` else its value) + sum over q0 <= q < q1 (ascending) of step q of rows a[i0+r] times
    panel{s} b[p{more}, q, :], by :func:`_kind` ({kinds}). An int64 ``out`` (integer kinds) has
    the block's int32 sums (exact: the caller bounds them) added to it, sign-extended. A step of
    A is one 32-bit value (a pair of int16, a quad of 8-bit values, a float32) broadcast to the
    lanes; B's step is ``group`` values per column, interleaved (8-bit B of "madd"/"dpwssd"
    widened to int16 in the register, VPMOVZXBW / VPMOVSXBW). "fma32": one fused multiply-add a
    step, the sequential float32 sum when the products are exact in float32. ``a`` and ``out``
    may be views whose rows are strided (read from their strides); along a row their elements
    are contiguous."""


def _doc(f, name, shape, kinds):
    f.__name__ = f.__qualname__ = name
    f.__doc__ = _TILE_DOC.format(name=name, rows=shape.rows, cols=shape.lanes * shape.regs,
                                 s="s" if shape.panels > 1 else "", kinds=kinds,
                                 more=f" .. p+{shape.panels - 1}" if shape.panels > 1 else "")
    return intrinsic(f)


_tile = _doc(_tile_intrinsic(AVX2), "_tile", AVX2,
             '"madd" VPMADDWD, "maddubs" VPMADDUBSW then VPMADDWD by ones, "fma32"')
_wtile = _doc(_tile_intrinsic(ZMM), "_wtile", ZMM, '"dpwssd" VPDPWSSD, "dpbusd" VPDPBUSD, "fma32"')
_wstile = _doc(_tile_intrinsic(ZMM_SAT), "_wstile", ZMM_SAT, '"maddubs" VPMADDUBSW, then VPDPWSSD by ones')


def _requant_regs(builder, shape, accs, rows, col, epi):
    """The accumulator registers (row r, register h at regs*r+h) plus ``colc[col+lanes*h:]`` and
    ``rowc[row]``, requantized as MLAS ``MlasRequantizeOutput``: float32(v) * mult, clamped to
    [fmin, fmax], rounded half to even, + zp; stored to ``codes`` as 8-bit integers."""
    codes, colc, rowc, mult, fmin, fmax, zp = epi
    lanes = shape.lanes
    vi, vf = ir.VectorType(_I32, lanes), ir.VectorType(_F32, lanes)
    const = lambda v: ir.Constant(_I64, v)  # noqa: E731
    n = cgutils.unpack_tuple(builder, codes.shape)[1]
    rint = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vf, [vf]), f"llvm.nearbyint.v{lanes}f32")

    def vec(arr, h, t):
        return builder.load(builder.bitcast(builder.gep(arr.data, [builder.add(col, const(lanes * h))]), t.as_pointer()),
                            align=4)

    cv, mv, lov, hiv, zv = ([vec(x, h, t) for h in range(shape.regs)] for x, t in
                            ((colc, vi), (mult, vf), (fmin, vf), (fmax, vf), (zp, vi)))
    out_t = ir.VectorType(_I8, lanes)
    splat = ir.Constant(vi, [0] * lanes)
    for r, row in enumerate(rows):
        rv = builder.load(builder.gep(rowc.data, [row]))
        rb = builder.shuffle_vector(builder.insert_element(ir.Constant(vi, None), rv, ir.Constant(_I32, 0)),
                                    ir.Constant(vi, None), splat)
        for h in range(shape.regs):
            v = builder.add(builder.add(accs[shape.regs * r + h], cv[h]), rb)
            f = builder.fmul(builder.sitofp(v, vf), mv[h])
            f = builder.select(builder.fcmp_ordered("<", f, lov[h]), lov[h], f)
            f = builder.select(builder.fcmp_ordered(">", f, hiv[h]), hiv[h], f)
            q = builder.add(builder.fptosi(builder.call(rint, [f]), vi), zv[h])
            dst = builder.gep(codes.data, [builder.add(builder.mul(row, n), builder.add(col, const(lanes * h)))])
            builder.store(builder.trunc(q, out_t), builder.bitcast(dst, out_t.as_pointer()), align=1)


def _tile_rq_intrinsic(shape):
    def tile_rq(typingctx, a, b, out, i0, p, q0, q1, fresh, epi):
        tt = _tile_types(a, b, shape)
        want = ("int32", "int32", "float32", "float32", "float32", "int32")
        if tt is None or tt[1] == "fma32" or not isinstance(epi, types.BaseTuple) or len(epi) != 7 \
                or str(epi[0].dtype) not in ("uint8", "int8") or tuple(str(t.dtype) for t in epi[1:]) != want:
            return None

        def codegen(context, builder, signature, args):
            arrs = [context.make_array(t)(context, builder, v) for t, v in zip(signature.args[:3], args[:3])]
            accs, _, rows, col = emit_tile(context, builder, tt, *arrs, *args[3:8])
            ep = [context.make_array(t)(context, builder, v)
                  for t, v in zip(signature.args[8].types, cgutils.unpack_tuple(builder, args[8], 7))]
            _requant_regs(builder, shape, accs, rows, col, ep)
            return context.get_dummy_value()

        return types.void(a, b, out, i0, p, q0, q1, fresh, epi), codegen
    return tile_rq


_RQ_DOC = """:func:`{tile}` for the last block of K with the requantization in the epilogue: ``epi`` =
    (codes (Mp, Np) uint8 or int8, colc (Np,) int32, rowc (Mp,) int32, mult, fmin, fmax (Np,)
    float32, zp (Np,) int32); codes[i, j] = zp[j] + rint(clamp(float32(acc + colc[j] +
    rowc[i]) * mult[j], fmin[j], fmax[j])) for the tile's rows i and columns j, with ``acc`` the
    tile's int32 sums (``out`` is read for the earlier blocks' partial sums unless ``fresh``,
    and not written). The int32 sum must not overflow (the caller bounds it; the int32 adds
    wrap, so only the final value need fit)."""


def _rq(f, tile):
    f.__name__ = f.__qualname__ = tile + "_rq"
    f.__doc__ = _RQ_DOC.format(tile=tile)
    return intrinsic(f)


_tile_rq, _wtile_rq = _rq(_tile_rq_intrinsic(AVX2), "_tile"), _rq(_tile_rq_intrinsic(ZMM), "_wtile")
_wstile_rq = _rq(_tile_rq_intrinsic(ZMM_SAT), "_wstile")
