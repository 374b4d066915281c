"""Single-node ONNX models and runners for the cross-checks (reference evaluator, onnxruntime)."""

import numpy as np
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

_TYPES = {np.dtype(np.uint8): TensorProto.UINT8, np.dtype(np.int8): TensorProto.INT8,
          np.dtype(np.int32): TensorProto.INT32, np.dtype(np.float32): TensorProto.FLOAT}


def single_node(op_type, x, inits, out_dtype, **attrs):
    """Model computing ``op_type(x, *inits)``; ``inits`` (name, array or None) become constants."""
    names = ["x"] + [name if arr is not None else "" for name, arr in inits]
    node = helper.make_node(op_type, names, ["y"], **attrs)
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("x", _TYPES[x.dtype], x.shape)],
        [helper.make_tensor_value_info("y", _TYPES[np.dtype(out_dtype)], None)],
        [numpy_helper.from_array(np.asarray(arr), name) for name, arr in inits if arr is not None])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)


def run_reference(model, x):
    return ReferenceEvaluator(model).run(None, {"x": x})[0]


def run_ort(model, x):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    return sess.run(None, {"x": x})[0]


def qlinear_matmul_model(a, a_s, a_zp, b, b_s, b_zp, y_s, y_zp):
    inits = [("a_s", a_s), ("a_zp", a_zp), ("b", b), ("b_s", b_s), ("b_zp", b_zp),
             ("y_s", y_s), ("y_zp", y_zp)]
    return single_node("QLinearMatMul", a, inits, y_zp.dtype)


def qlinear_conv_model(x, x_s, x_zp, w, w_s, w_zp, y_s, y_zp, bias, strides, pads, dil, group):
    inits = [("x_s", x_s), ("x_zp", x_zp), ("w", w), ("w_s", w_s), ("w_zp", w_zp),
             ("y_s", y_s), ("y_zp", y_zp), ("B", bias)]
    return single_node("QLinearConv", x, inits, y_zp.dtype, strides=list(strides),
                       pads=list(pads), dilations=list(dil), group=group)


def cpu_has_vnni():
    try:
        flags = open("/proc/cpuinfo").read()
    except OSError:
        return False
    return "avx512_vnni" in flags or "avx_vnni" in flags
