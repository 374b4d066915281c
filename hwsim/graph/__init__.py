"""The IR: a networkx DiGraph of typed ops, tensors with quantization annotations, the model zoo,
and ONNX import."""

from hwsim.graph.ir import Graph, Tensor
from hwsim.graph.quant import Pruning, QuantSpec

__all__ = ["Graph", "Tensor", "QuantSpec", "Pruning"]
