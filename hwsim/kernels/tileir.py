"""The LLVM IR of the GEMM micro-kernel of :mod:`hwsim.kernels.simdgemm`: one MR x NR tile of
int32 (or float32) accumulators in eight AVX2 registers over a block of K, and what happens to
them after the block: stored as accumulators (:func:`_tile`) or, after the last block,
requantized in the registers and stored as 8-bit codes (:func:`_tile_rq`, onnxruntime's MLAS
``MlasRequantizeOutput``).

Written as LLVM IR through numba intrinsics: numba's loop vectorizer turns a tile loop into
32-bit multiplies, four times slower. Imports llvmlite and numba only.
"""

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

MR, NR = 4, 16  # micro-tile rows x columns
_I32, _I64 = ir.IntType(32), ir.IntType(64)
_V8I32, _V16I16, _V32I8 = ir.VectorType(_I32, 8), ir.VectorType(ir.IntType(16), 16), ir.VectorType(ir.IntType(8), 32)
_V8F32 = ir.VectorType(ir.FloatType(), 8)


def _kind(a_dtype, b_dtype):
    """The multiply-add a (packed A element type, packed B element type) pair selects, or None:
    int16 A pairs with int16, uint8 (widened by zero extension) or int8 (sign extension) B pairs
    "madd" (VPMADDWD); uint8 A quads with int8 B quads "maddubs"; float32 with float32 "fma32"."""
    a, b = str(a_dtype), str(b_dtype)
    if a == "int16" and b in ("int16", "uint8", "int8"):
        return "madd"
    return {("uint8", "int8"): "maddubs", ("float32", "float32"): "fma32"}.get((a, b))


def _tile_types(a, b):
    """(kind, widening of B, B elements per register load, the load's LLVM type) of a tile of
    packed ``a`` by panels ``b`` (numba array types), or None when :func:`_kind` has none."""
    kind = _kind(a.dtype, b.dtype)
    if kind is None:
        return None
    group = {"madd": 2, "maddubs": 4, "fma32": 1}[kind]
    widen = {"uint8": "zext", "int8": "sext"}.get(str(b.dtype)) if kind == "madd" else None
    half = NR * group // 2  # B elements in half a panel row (one register's worth)
    load_t = _V8F32 if kind == "fma32" else ir.VectorType(ir.IntType(b.dtype.bitwidth), half)
    return kind, widen, half, load_t


def emit_tile(context, builder, types_, aa, ba, oa, i0v, pv, q0v, q1v, fresh_v):
    """LLVM IR of the tile loop of :func:`_tile` (``types_`` from :func:`_tile_types`; ``aa``,
    ``ba``, ``oa`` numba array structs): leaves the builder after the loop and returns (the MR*2
    accumulator registers, row r half h at 2r+h, the pointers of their places in ``oa``, the row
    indices, the first column). Shared by :func:`_tile` and the fused epilogue of
    :mod:`hwsim.kernels.fusedgemm`."""
    kind, widen, half, b_load_t = types_
    flt = kind == "fma32"
    acc_t = _V8F32 if flt else _V8I32
    a_pitch = cgutils.unpack_tuple(builder, aa.strides)[0]  # bytes: ``a`` and ``out`` may be views
    b_k, b_w = cgutils.unpack_tuple(builder, ba.shape)[1:3]
    o_pitch = cgutils.unpack_tuple(builder, oa.strides)[0]
    i8p = ir.IntType(8).as_pointer()
    mod = builder.module
    madd = cgutils.get_or_insert_function(mod, ir.FunctionType(_V8I32, [_V16I16, _V16I16]),
                                          "llvm.x86.avx2.pmadd.wd")
    ub = cgutils.get_or_insert_function(mod, ir.FunctionType(_V16I16, [_V32I8, _V32I8]),
                                        "llvm.x86.avx2.pmadd.ub.sw")
    fma = cgutils.get_or_insert_function(mod, ir.FunctionType(_V8F32, [_V8F32] * 3), "llvm.fma.v8f32")
    const = lambda v: ir.Constant(_I64, v)  # noqa: E731
    rows = [builder.add(i0v, const(r)) for r in range(MR)]
    a_rows = [builder.bitcast(builder.gep(builder.bitcast(aa.data, i8p), [builder.mul(r, a_pitch)]),
                              (ir.FloatType() if flt else _I32).as_pointer()) for r in rows]
    b_base = builder.gep(ba.data, [builder.mul(pv, builder.mul(b_k, b_w))])
    col = builder.mul(pv, const(NR))
    optrs = [builder.bitcast(builder.gep(builder.bitcast(oa.data, i8p),
                                         [builder.add(builder.mul(r, o_pitch), builder.mul(builder.add(col, const(8 * h)), const(4)))]),
                             acc_t.as_pointer()) for r in rows for h in range(2)]
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
    bp = builder.gep(b_base, [builder.mul(q, b_w)])
    bv = [builder.load(builder.bitcast(builder.gep(bp, [const(half * h)]), b_load_t.as_pointer()), align=1)
          for h in range(2)]
    if widen == "zext":
        bv = [builder.zext(v, _V16I16) for v in bv]
    elif widen == "sext":
        bv = [builder.sext(v, _V16I16) for v in bv]
    elif kind == "madd":
        bv = [builder.bitcast(v, _V16I16) for v in bv]
    elif kind == "maddubs":
        bv = [builder.bitcast(v, _V32I8) for v in bv]
    ones = ir.Constant(_V16I16, [1] * 16)
    new = []
    for r in range(MR):
        av = builder.load(builder.gep(a_rows[r], [q]), align=1)
        bc = builder.shuffle_vector(builder.insert_element(ir.Constant(acc_t, None), av, ir.Constant(_I32, 0)),
                                    ir.Constant(acc_t, None), ir.Constant(_V8I32, [0] * 8))
        for h in range(2):
            if kind == "fma32":
                new.append(builder.call(fma, [bc, bv[h], accs[2 * r + h]]))
                continue
            if kind == "maddubs":
                prod = builder.call(madd, [builder.call(ub, [builder.bitcast(bc, _V32I8), bv[h]]), ones])
            else:
                prod = builder.call(madd, [builder.bitcast(bc, _V16I16), bv[h]])
            new.append(builder.add(accs[2 * r + h], prod))
    q.add_incoming(builder.add(q, const(1)), builder.basic_block)
    for ph, v in zip(accs, new):
        ph.add_incoming(v, builder.basic_block)
    builder.branch(header)
    builder.position_at_end(done)
    return accs, optrs, rows, col


@intrinsic
def _tile(typingctx, a, b, out, i0, p, q0, q1, fresh):
    """``_tile(a, b, out, i0, p, q0, q1, fresh)``: out[i0:i0+MR, NR*p:NR*p+NR] = (0 if ``fresh``
    else its value) + sum over q0 <= q < q1 (ascending) of step q of rows a[i0+r] times panel
    b[p, q, :], by :func:`_kind`: "madd" (a: int16, a step is a pair of k; b: NR pairs of int16,
    or of 8-bit values widened to int16 in the register, VPMOVZXBW/VPMOVSXBW; VPMADDWD),
    "maddubs" (a: uint8, a step is four k; b: NR quads of int8, VPMADDUBSW then VPMADDWD by
    ones), "fma32" (a, b: float32, one k a step, one fused multiply-add: the sequential float32
    sum when the products are exact in float32). The step of A is read as one 32-bit value and
    broadcast to the eight lanes. ``a`` and ``out`` may be views whose rows are strided (read
    from their strides); along a row their elements are contiguous."""
    tt = _tile_types(a, b)
    if tt is None:
        return None

    def codegen(context, builder, signature, args):
        arrs = [context.make_array(t)(context, builder, v) for t, v in zip(signature.args[:3], args[:3])]
        accs, optrs, _, _ = emit_tile(context, builder, tt, *arrs, *args[3:])
        for v, ptr in zip(accs, optrs):
            builder.store(v, ptr, align=4)
        return context.get_dummy_value()

    return types.void(a, b, out, i0, p, q0, q1, fresh), codegen




def _requant_regs(builder, accs, rows, col, epi):
    """The MR*2 accumulator registers (row r, half h at 2r+h) plus ``colc[col+8h:]`` and
    ``rowc[row]``, requantized as MLAS ``MlasRequantizeOutput``: float32(v) * mult, clamped to
    [fmin, fmax], rounded half to even, + zp; stored to ``codes`` as 8-bit integers."""
    codes, colc, rowc, mult, fmin, fmax, zp = epi
    const = lambda v: ir.Constant(_I64, v)  # noqa: E731
    n = cgutils.unpack_tuple(builder, codes.shape)[1]
    rint = cgutils.get_or_insert_function(builder.module, ir.FunctionType(_V8F32, [_V8F32]), "llvm.nearbyint.v8f32")

    def vec(arr, h, t):
        return builder.load(builder.bitcast(builder.gep(arr.data, [builder.add(col, const(8 * h))]), t.as_pointer()),
                            align=4)

    cv, mv, lov, hiv, zv = ([vec(x, h, t) for h in range(2)] for x, t in
                            ((colc, _V8I32), (mult, _V8F32), (fmin, _V8F32), (fmax, _V8F32), (zp, _V8I32)))
    out_t = ir.VectorType(ir.IntType(8), 8)
    for r, row in enumerate(rows):
        rv = builder.load(builder.gep(rowc.data, [row]))
        rb = builder.shuffle_vector(builder.insert_element(ir.Constant(_V8I32, None), rv, ir.Constant(_I32, 0)),
                                    ir.Constant(_V8I32, None), ir.Constant(_V8I32, [0] * 8))
        for h in range(2):
            v = builder.add(builder.add(accs[2 * r + h], cv[h]), rb)
            f = builder.fmul(builder.sitofp(v, _V8F32), mv[h])
            f = builder.select(builder.fcmp_ordered("<", f, lov[h]), lov[h], f)
            f = builder.select(builder.fcmp_ordered(">", f, hiv[h]), hiv[h], f)
            q = builder.add(builder.fptosi(builder.call(rint, [f]), _V8I32), zv[h])
            dst = builder.gep(codes.data, [builder.add(builder.mul(row, n), builder.add(col, const(8 * h)))])
            builder.store(builder.trunc(q, out_t), builder.bitcast(dst, out_t.as_pointer()), align=1)


@intrinsic
def _tile_rq(typingctx, a, b, out, i0, p, q0, q1, fresh, epi):
    """:func:`_tile` for the last block of K with the requantization in the epilogue: ``epi`` =
    (codes (Mp, Np) uint8 or int8, colc (Np,) int32, rowc (Mp,) int32, mult, fmin, fmax (Np,)
    float32, zp (Np,) int32); codes[i, j] = zp[j] + rint(clamp(float32(acc + colc[j] +
    rowc[i]) * mult[j], fmin[j], fmax[j])) for the tile's rows i and columns j, with ``acc`` the
    tile's int32 sums (``out`` is read for the earlier blocks' partial sums unless ``fresh``,
    and not written). The int32 sum must not overflow (the caller bounds it)."""
    tt = _tile_types(a, b)
    want = ("int32", "int32", "float32", "float32", "float32", "int32")
    if tt is None or tt[0] == "fma32" or not isinstance(epi, types.BaseTuple) or len(epi) != 7 \
            or str(epi[0].dtype) not in ("uint8", "int8") or tuple(str(t.dtype) for t in epi[1:]) != want:
        return None

    def codegen(context, builder, signature, args):
        arrs = [context.make_array(t)(context, builder, v) for t, v in zip(signature.args[:3], args[:3])]
        accs, _, rows, col = emit_tile(context, builder, tt, *arrs, *args[3:8])
        ep = [context.make_array(t)(context, builder, v)
              for t, v in zip(signature.args[8].types, cgutils.unpack_tuple(builder, args[8], 7))]
        _requant_regs(builder, accs, rows, col, ep)
        return context.get_dummy_value()

    return types.void(a, b, out, i0, p, q0, q1, fresh, epi), codegen
