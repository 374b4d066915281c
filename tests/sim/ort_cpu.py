"""Which integer kernel onnxruntime uses on this machine, asked of onnxruntime itself.

x86 CPUs without VNNI (AVX2) multiply uint8 by int8 with VPMADDUBSW, which saturates the sum of
each pair of products to int16; with VNNI (AVX-512 VNNI, AVX-VNNI) and on ARM the sums are exact.
hwsim models the first with ``pairwise_int16=True`` (``--pairwise-int16``). Tests that compare with
onnxruntime select the option from :func:`ort_u8s8_pairs_saturate`.
"""

from functools import lru_cache

import numpy as np
from onnx import TensorProto, helper, numpy_helper


@lru_cache(maxsize=1)
def ort_u8s8_pairs_saturate() -> bool:
    """True when onnxruntime's MatMulInteger gives 255*127 + 255*127 = 64770 as int16's 32767."""
    import onnxruntime as ort

    node = helper.make_node("MatMulInteger", ["a", "b"], ["y"])
    graph = helper.make_graph([node], "probe", [helper.make_tensor_value_info("a", TensorProto.UINT8, (1, 2))],
                              [helper.make_tensor_value_info("y", TensorProto.INT32, (1, 1))],
                              [numpy_helper.from_array(np.full((2, 1), 127, np.int8), "b")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    so = ort.SessionOptions()
    so.log_severity_level = 3
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    y = int(sess.run(None, {"a": np.full((1, 2), 255, np.uint8)})[0][0, 0])
    if y not in (64770, 32767):
        raise RuntimeError(f"onnxruntime MatMulInteger probe gave {y}, neither exact (64770) nor int16-saturated")
    return y == 32767


def ort_run(model, feeds: dict) -> list:
    """Outputs of onnxruntime's CPU provider on ``model`` (a ModelProto), warnings silenced."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"]).run(None, feeds)
