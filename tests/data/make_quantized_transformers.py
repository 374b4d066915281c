"""How tests/data/tiny_bert_qdynamic.onnx and tiny_bert_qstatic.onnx were made from tiny_bert.onnx
(onnxruntime 1.32; ``python tests/data/make_quantized_transformers.py`` rewrites them here).

- ``tiny_bert_qdynamic.onnx``: ``quantize_dynamic`` with its defaults: int8 embedding tables read
  through Gather -> DequantizeLinear, MatMul -> DynamicQuantizeLinear (uint8) + MatMulInteger (u8 x s8).
- ``tiny_bert_qdynamic_u8.onnx``: the same with ``weight_type=QUInt8`` (uint8 tables and weights, as
  in the T5 of issue 10).
- ``tiny_bert_qstatic.onnx``: ``quantize_static`` in QDQ format (uint8 activations, int8 weights,
  per tensor, default op types), calibrated on 8 seeded batches of token ids.
"""

from pathlib import Path

import numpy as np
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_dynamic, quantize_static

HERE = Path(__file__).parent
SHAPE = (2, 8)  # (batch, sequence) of the calibration inputs
VOCAB = 64


class _Ids(CalibrationDataReader):
    def __init__(self):
        rng = np.random.default_rng(0)
        self.data = iter([{"input_ids": rng.integers(0, VOCAB, SHAPE).astype(np.int64)} for _ in range(8)])

    def get_next(self):
        return next(self.data, None)


def main(out: Path = HERE) -> None:
    src = str(HERE / "tiny_bert.onnx")
    quantize_dynamic(src, str(out / "tiny_bert_qdynamic.onnx"))
    quantize_dynamic(src, str(out / "tiny_bert_qdynamic_u8.onnx"), weight_type=QuantType.QUInt8)
    quantize_static(src, str(out / "tiny_bert_qstatic.onnx"), _Ids(), quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)


if __name__ == "__main__":
    main()
