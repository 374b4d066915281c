"""The explicit executor registry: one function per op kind of :data:`hwsim.graph.ops.OP_CLASSES`.

An executor is ``fn(ctx, op, xs) -> np.ndarray``: ``xs`` are the real float64 values of the op's
inputs in argument order (constants already prepared by the runner); it returns the real value of
the op's single output. ``ctx.reference`` is True in the float reference run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from hwsim.graph.ir import Graph
from hwsim.graph.ops import OpBase
from hwsim.sim import qspec

Executor = Callable[["ExecContext", OpBase, list], np.ndarray]
EXECUTORS: dict[str, Executor] = {}
#: op kinds whose executors take :class:`~hwsim.sim.qspec.Coded` inputs (read through
#: :meth:`ExecContext.codes_of`, or :func:`~hwsim.sim.qspec.real_of` on their other paths)
CODED_INPUTS: set[str] = set()
#: op kinds whose executors round their own inputs as DequantizeLinear outputs them
#: (:func:`hwsim.sim.ortfused.dequantized_input`) instead of the runner
OWN_ROUNDING: set[str] = set()


def register_exec(kind: str, coded_inputs: bool = False, own_rounding: bool = False) -> Callable[[Executor], Executor]:
    """Decorator: register ``fn`` as the executor of op kind ``kind`` (one per kind);
    ``coded_inputs``: it accepts :class:`~hwsim.sim.qspec.Coded` input values; ``own_rounding``:
    in the quantized run it is handed its inputs' real values unrounded and rounds what it reads
    itself (an embedding rounds the rows it gathers, not its whole table)."""

    def deco(fn: Executor) -> Executor:
        if kind in EXECUTORS:
            raise ValueError(f"executor for {kind!r} registered twice")
        EXECUTORS[kind] = fn
        if coded_inputs:
            CODED_INPUTS.add(kind)
        if own_rounding:
            OWN_ROUNDING.add(kind)
        return fn

    return deco


def rounds_own_inputs(op: OpBase) -> bool:
    """True when ``op``'s executor rounds its own inputs (see :func:`register_exec`)."""
    return op.op in OWN_ROUNDING and not getattr(op, "runtime_quant", ())


def takes_coded(op: OpBase) -> bool:
    """True when ``op``'s executor may be handed :class:`~hwsim.sim.qspec.Coded` input values
    (not through run-time scales: :func:`hwsim.sim.qdq.run_with_runtime_quant` reads arrays)."""
    return op.op in CODED_INPUTS and not getattr(op, "runtime_quant", ())


@dataclass
class ExecContext:
    """What an executor may read besides its inputs.

    Attributes
    ----------
    graph : Graph
        The (calibrated) graph being run; tensor QuantSpecs are final.
    reference : bool
        True for the float reference run (quantization ignored, float64 values).
    reference_dtype : str
        Type in which the float reference computes its convolutions and matrix products
        (float64 or float32; ``reference_precision`` of :func:`hwsim.sim.run`).
    requant : str
        Requantization mode of integer layers: exact | onnxruntime | gemmlowp | tflite.
    overflow : str
        Integer accumulator overflow rule: wrap | saturate.
    pairwise_int16 : bool
        Model x86 VPMADDUBSW int16 pair saturation in integer matmuls (onnxruntime u8*s8 on AVX2).
    ort_e4m3fn_cast : bool
        Model onnxruntime's FLOAT8E4M3FN cast with saturate=0 ([480, 496) -> +-448).
    ort_activations : bool
        Compute float32 Sigmoid and Tanh ops as onnxruntime does on x86-64 (MLAS's rational
        approximations, :mod:`hwsim.sim.mlas_math`) instead of the float64 function rounded to
        float32; the float reference keeps the latter.
    float_order : str
        Summation order of low-precision float matmuls (sequential | pairwise | blocked).
    ort_threads : int
        onnxruntime intra-op threads modelled (DynamicQuantizeLSTM's batch split).
    seed : int
        Seed of stochastic parts (VQ codebooks, stochastic rounding).
    notes : list of str
        Messages for the result (deduplicated by the runner).
    on_grid : set of str
        Outputs an executor has already rounded onto their own tensor's QuantSpec (the runner
        does not round them again; see :meth:`mark_on_grid`).
    specs : dict
        QuantSpecs that stand for some tensors' own while one op runs (scales and zero points
        given at run time: :func:`hwsim.sim.qdq.run_with_runtime_quant`).
    codes : dict
        Tensor name -> (real value array, its 8-bit integer codes under the tensor's own spec),
        kept by :meth:`codes_of` when it divides a real value (a float op's output) so that a
        second integer reader does not divide again; the runner drops an entry with its value.
        (Integer outputs and stored weight codes travel as :class:`~hwsim.sim.qspec.Coded`.)
    deferred_sums : bool
        The reference's conv2d / linear may return their output as a product plus its bias,
        :class:`~hwsim.sim.refvalues.Biased` (the runner's float reference reads them; other
        callers of the executors get arrays).
    """

    graph: Graph
    reference: bool
    reference_dtype: str = "float64"
    requant: str = "exact"
    overflow: str = "wrap"
    pairwise_int16: bool = False
    ort_e4m3fn_cast: bool = False
    ort_activations: bool = False
    float_order: str = "sequential"
    ort_threads: int = 1
    seed: int = 0
    notes: list[str] = field(default_factory=list)
    on_grid: set = field(default_factory=set)
    specs: dict = field(default_factory=dict)
    codes: dict = field(default_factory=dict)
    deferred_sums: bool = False

    def mark_on_grid(self, tensor: str) -> None:
        """Say that the value being returned for ``tensor`` is already on its spec's grid
        (``qspec.from_codes`` of codes in the format's range: rounding it again is the identity)."""
        self.on_grid.add(tensor)

    def spec(self, tensor: str):
        return self.specs.get(tensor) or self.graph.tensors[tensor].quant

    def codes_of(self, tensor: str, real: np.ndarray) -> np.ndarray:
        """Integer codes of ``real``, the value of ``tensor``, under the tensor's spec
        (``qspec.codes``; an integer array, 8-bit formats as uint8 / int8): the codes of a
        :class:`~hwsim.sim.qspec.Coded` value, or those kept for this very array when there are
        some, else computed (and kept when 8-bit)."""
        if isinstance(real, qspec.Coded):
            if tensor not in self.specs:
                return real.codes
            real = real.real()
        hit = self.codes.get(tensor)
        if hit is not None and hit[0] is real and tensor not in self.specs:
            return hit[1]
        spec = self.spec(tensor)
        c = qspec.codes(real, spec)
        narrow = qspec.code_dtype(spec)
        if narrow is not None and tensor not in self.specs and c.size and \
                np.iinfo(narrow).min <= c.min() and c.max() <= np.iinfo(narrow).max:  # kept only as 8-bit
            c = c.astype(narrow)
            self.codes[tensor] = (real, c)
        return c

    def note(self, msg: str) -> None:
        if msg not in self.notes:
            self.notes.append(msg)


def execute(ctx: ExecContext, op: OpBase, xs: list) -> np.ndarray:
    """Run ``op``'s executor; a compute op with run-time scales / zero points through
    :func:`hwsim.sim.qdq.run_with_runtime_quant`."""
    if getattr(op, "runtime_quant", ()):
        from hwsim.sim.qdq import run_with_runtime_quant

        return run_with_runtime_quant(ctx, op, xs, EXECUTORS[op.op])
    return EXECUTORS[op.op](ctx, op, xs)
