"""Pydantic schema of a hardware target (``targets/*.yaml``).

Every record that holds numbers carries a ``source`` string: a citation, a derivation
("(derived) ..."), or an explicit "assumption: ...". Units are part of field names
(``bandwidth_bytes_per_s``, ``read_energy_pj_per_bit``). Only derived properties live here; the
cost model in :mod:`hwsim.cost` reads these records and never the YAML.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

SCHEMA_VERSION = 1

#: bottleneck labels that are not memory levels: the MAC unit, and the power cap (see hwsim.cost.layer.finish)
NON_MEMORY_BOTTLENECKS = ("compute", "power")


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def _need_source(v: str) -> str:
    if not v or not v.strip():
        raise ValueError("give a citation, a '(derived) ...' note or 'assumption: ...' for these numbers")
    return v


class MacRate(_Record):
    """Throughput of one (activation format, weight format) pair on the compute unit."""

    activation: str = Field(description="Activation format name, e.g. int8, fp16.")
    weight: str = Field(description="Weight format name, e.g. int8, int4, fp8_e4m3fn.")
    macs_per_cycle: float = Field(gt=0, description="MACs per clock cycle per core (simd, vector) or of the whole "
                                                    "array (systolic). A systolic unit may give "
                                                    "macs_per_pe_per_cycle instead; this is then derived.")
    macs_per_pe_per_cycle: float | None = Field(
        None, gt=0, description="Systolic only: MACs per cycle of one PE (2 for int4 packed two per int8 PE); "
                                "macs_per_cycle = rows x cols x this, so a bigger array is priced as one.")
    accumulator: str = Field(description="Accumulator format: 'fx' (product range + 12 bits), intN or a float name.")
    efficiency: float | None = Field(None, gt=0, le=1, description="Fraction of this pair's peak a real kernel "
                                     "library reaches (measured); null = the unit's efficiency.")
    conv_efficiency: float | None = Field(None, gt=0, le=1, description="Fraction of this pair's peak a real "
                                          "kernel library reaches on dense convolutions (measured, e.g. where "
                                          "they run through im2col or unfused dequantization); null = efficiency.")
    pointwise_efficiency: float | None = Field(None, gt=0, le=1, description="The same for 1x1 dense "
                                               "convolutions, whose reduction over input channels alone reuses "
                                               "each loaded activation 9x less than a 3x3's; null = "
                                               "conv_efficiency.")
    depthwise_efficiency: float | None = Field(None, gt=0, le=1, description="The same for depthwise "
                                               "convolutions (one input channel per group), whose short reductions "
                                               "use the unit worse; null = conv_efficiency.")
    depthwise_overhead_s: float | None = Field(None, ge=0, description="Fixed time of a depthwise convolution "
                                               "of this pair beyond the per-layer overhead (its kernel's set-up "
                                               "and per-channel loops; measured), s; null = none.")
    attention_efficiency: float | None = Field(None, gt=0, le=1, description="The same for the two products of "
                                               "a fused attention kernel (compute.fused_attention; short head "
                                               "dimensions, softmax between them); null = efficiency.")
    energy_per_mac_pj: float | None = Field(None, ge=0, description="Measured dynamic energy per MAC of this pair "
                                            "at the target's energy_scope, pJ; null = gate model + mac_overhead_pj.")
    source: str = Field(description="Where the rate comes from.")

    _src = field_validator("source")(classmethod(lambda cls, v: _need_source(v)))

    @field_validator("activation", "weight")
    @classmethod
    def _operand(cls, v: str) -> str:
        return _format_name(v)

    @field_validator("accumulator")
    @classmethod
    def _accumulator(cls, v: str) -> str:
        return v if v == "fx" else _format_name(v)

    @model_validator(mode="after")
    def _holds_a_product(self):
        """An integer accumulator narrower than one product, or one that sums float products, cannot be
        built as described (the simulator would keep int32 while the cost model priced the narrow one)."""
        from hwsim import formats

        if self.accumulator == "fx":
            return self
        acc, a, w = (formats.get(n) for n in (self.accumulator, self.activation, self.weight))
        if not acc.integer_codes:
            return self
        if a.kind not in _INT_KINDS or w.kind not in _INT_KINDS:
            raise ValueError(f"accumulator {self.accumulator} sums {self.activation} x {self.weight} products, which "
                             "are not integers; use a float accumulator (e.g. fp32) or 'fx'")
        need = _operand_bits(a) + _operand_bits(w)
        if acc.bits < need:
            raise ValueError(f"accumulator {self.accumulator} cannot hold one {self.activation} x {self.weight} "
                             f"product ({need} bits); use int{max(need, 16)} or wider, or 'fx'")
        return self


_INT_KINDS = ("int", "binary", "ternary", "signed_binary", "pow2")


def _operand_bits(f) -> int:
    """Bits of an integer-like operand as a MAC sees it (discrete codes take a sign and a magnitude bit)."""
    return f.bits if f.kind == "int" else max(2, int(getattr(f, "bits", 2)))


def _format_name(v: str) -> str:
    """A format name hwsim can parse, as a ValueError for the field otherwise."""
    from hwsim import formats
    from hwsim.errors import HwsimError

    try:
        return formats.get(v).name
    except HwsimError as exc:
        raise ValueError(str(exc)) from None


#: an explicit systolic rate further than this factor from one MAC per PE per cycle contradicts rows x cols
_MAX_PER_PE_FACTOR = 8


def _check_array_rate(i: int, rate, dims: list[int]) -> None:
    """Refuse an explicit systolic macs_per_cycle that rows x cols cannot be running (e.g. a 256 x 256
    array left at the 64 x 64 array's 4096 MACs/cycle would be priced slower than the small one)."""
    mpc = rate.get("macs_per_cycle") if isinstance(rate, dict) else None
    if not isinstance(mpc, (int, float)) or mpc <= 0:
        return
    per_pe = mpc / (dims[0] * dims[1])
    if not 1 / _MAX_PER_PE_FACTOR <= per_pe <= _MAX_PER_PE_FACTOR:
        raise ValueError(
            f"rates[{i}].macs_per_cycle {mpc:g} on a {dims[0]} x {dims[1]} systolic array is {per_pe:.3g} MACs per "
            f"PE per cycle; give macs_per_pe_per_cycle instead (the rate then follows rows x cols) or fix "
            f"compute.rows / compute.cols")


class ComputeUnit(_Record):
    """The MAC array and how a layer maps onto it."""

    mapping: Literal["simd", "systolic", "vector"] = Field(
        description="simd: CPU cores with SIMD pipes; systolic: rows x cols PE array; vector: many lanes "
                    "in tiles (GPU tensor cores).")
    cores: int = Field(1, ge=1, description="Parallel cores / SMs; macs_per_cycle is per core.")
    rows: int = Field(1, ge=1, description="Systolic rows (reduction dimension for weight-stationary).")
    cols: int = Field(1, ge=1, description="Systolic columns (output channels).")
    dataflow: Literal["weight_stationary", "output_stationary", "row_stationary"] = Field(
        "weight_stationary", description="Systolic dataflow.")
    vector_macs: int = Field(16, ge=1, description="MACs issued together along output channels (simd lane "
                                                   "group / tensor-core tile edge); pads partial vectors.")
    tile_rows: int = Field(1, ge=1, description="Output rows per work tile (simd micro-kernel rows; vector mapping wave quantisation).")
    split_k_depth: int | None = Field(None, ge=1, description="Vector mapping: when output tiles leave cores idle "
                                      "the reduction is split into slices of at least this depth, one per idle "
                                      "core (split-K / stream-K kernels); null = never split.")
    alignment_bytes: int = Field(16, ge=1, description="Vector mapping: operand rows (reduction run, output "
                                 "channels) that are multiples of this many bytes take the fast path (GPU: "
                                 "tensor-memory-accelerator copies need 16-byte strides).")
    unaligned_efficiency: float | None = Field(None, gt=0, le=1, description="Vector mapping: fraction of the "
                                               "pair's rate a GEMM or groups-1 convolution keeps when an operand "
                                               "row misses alignment_bytes; null = no penalty.")
    rates: tuple[MacRate, ...] = Field(min_length=1, description="Supported format pairs.")
    efficiency: float = Field(1.0, gt=0, le=1, description="Fraction of peak a real kernel library reaches.")
    efficiency_source: str = Field("assumption: peak", description="Source of efficiency.")
    elementwise_ops_per_cycle: float = Field(gt=0, description="Non-MAC ops (activations, norms) per cycle per core.")
    elementwise_energy_pj: float | None = Field(None, ge=0, description="Measured dynamic energy of one non-MAC "
                                                "op at the target's energy_scope, pJ; null = half the gate energy "
                                                "of a MAC of the op's format.")
    unpack_weights_per_cycle: float = Field(
        gt=0, description="Sub-byte weights unpacked (shift/mask) per cycle per core when a pair falls back.")
    lut_lookups_per_cycle: float = Field(
        gt=0, description="Table look-ups (one element each, table of <= lut_table_entries) per cycle per core.")
    lut_table_entries: int = Field(64, ge=2, description="Largest table one look-up instruction indexes.")
    register_bytes: float = Field(gt=0, description="Operand storage inside the unit (registers / PE scratch).")
    epilogue_fusion: bool = Field(False, description="Batch-norms and simple activations (ReLU, ReLU6/clip, "
                                  "sigmoid, tanh, hard-sigmoid) that are the only reader of a conv2d / linear "
                                  "output with float weights (or of such a fused op) are folded into it: the "
                                  "batch-norm into the weights, the activation into the output write, so they "
                                  "cost no time, traffic or overhead (onnxruntime's and cuDNN's conv fusions). "
                                  "Quantized weights cannot absorb a batch-norm, which then stays an op.")
    quantize_fusion: bool = Field(False, description="Integer MAC layers (int32 sums) run their neighbours "
                                  "inside the kernel, as onnxruntime's DynamicQuantizeMatMul / MatMulIntegerToFloat "
                                  "do: a dynamic quantization only they read, the cast, scale multiply and bias add "
                                  "of their int32 output, and the run-time scale products; those cost no time, "
                                  "traffic or overhead of their own.")
    qdq_nodes: bool = Field(False, description="Quantized activations are converted by QuantizeLinear / "
                            "DequantizeLinear nodes of their own, as onnxruntime runs QDQ models: a quantized graph "
                            "input pays a quantize node; a non-MAC op that computes in float (no integer version, "
                            "or not all its activations quantized) pays a dequantize node per quantized input and "
                            "a quantize node for a quantized output, each the per-layer overhead plus its float32 "
                            "and code traffic. False (default): ops read and write the codes directly.")
    movement_nodes: bool = Field(False, description="Reshapes, transposes, slices, concats and gathers of "
                                 "activations run as nodes of their own, as an interpreting runtime (onnxruntime) "
                                 "runs them: each pays the non-MAC per-layer overhead, and those that copy "
                                 "(transpose, slice, concat, gather) read and write their output's bytes. False "
                                 "(default): a compiler folds them into addressing, at no cost.")
    psum_bits: int | None = Field(None, ge=1, description="Width at which partial sums are stored outside the MAC "
                                  "(scratchpads, buffers) between passes over the reduction, bits; null = the "
                                  "accumulator's width. Prices traffic only.")
    fused_attention: bool = Field(False, description="softmax(q k^T x scale) v runs as one kernel (flash "
                                  "attention): the scores stay on chip, scale and softmax cost no time or traffic "
                                  "of their own, one kernel overhead, both products at the pair's "
                                  "attention_efficiency (hwsim.cost.fusion; PyTorch scaled_dot_product_attention).")
    batchnorm_kernels: int = Field(1, ge=1, description="Kernels one inference batch norm launches, each paying the "
                                   "non-MAC overhead (PyTorch eval on channels-last tensors: 3, the running "
                                   "statistics to a scale, a copy, the transform).")
    unaligned_conv_on_fp32: bool = Field(False, description="Vector mapping: a groups-1 convolution whose input "
                                         "channels (one kernel tap's reduction run) miss alignment_bytes runs off the "
                                         "matrix units, at the target's fp32 x fp32 rate (cuDNN's CUDA-core kernels "
                                         "for 3-channel image stems and patch embeddings).")
    mac_overhead_pj: float = Field(0.0, ge=0, description="Energy per MAC beyond the arithmetic (instruction "
                                                          "fetch, register file), amortised over SIMD lanes.")
    source: str = Field(description="Where the unit's shape and costs come from.")

    _src = field_validator("source")(classmethod(lambda cls, v: _need_source(v)))

    @model_validator(mode="before")
    @classmethod
    def _derive_rates(cls, data):
        """Fill each rate's macs_per_cycle from rows x cols x macs_per_pe_per_cycle (systolic units)."""
        if not isinstance(data, dict) or not isinstance(data.get("rates"), (list, tuple)):
            return data
        rates = [r.model_dump() if isinstance(r, MacRate) else r for r in data["rates"]]
        systolic = data.get("mapping") == "systolic"
        if not systolic and any(isinstance(r, dict) and r.get("macs_per_pe_per_cycle") is not None for r in rates):
            raise ValueError("rates[].macs_per_pe_per_cycle needs mapping: systolic (rows x cols PEs); give "
                             "macs_per_cycle instead")
        dims = [data.get(k, 1) for k in ("rows", "cols")]
        if not systolic or not all(isinstance(d, int) and d >= 1 for d in dims):
            return data
        pes = dims[0] * dims[1]
        out = []
        for i, r in enumerate(rates):
            per_pe = r.get("macs_per_pe_per_cycle") if isinstance(r, dict) else None
            if per_pe is None or not isinstance(per_pe, (int, float)):
                _check_array_rate(i, r, dims)
                out.append(r)
                continue
            derived = pes * per_pe
            given = r.get("macs_per_cycle")
            if given is not None and given != derived:
                raise ValueError(f"rates[{i}]: macs_per_cycle {given} != rows x cols x macs_per_pe_per_cycle "
                                 f"= {derived:g}; give only one of the two")
            out.append({**r, "macs_per_cycle": derived})
        return {**data, "rates": out}


class MemoryLevel(_Record):
    """One level of the memory hierarchy (listed innermost first, DRAM last)."""

    name: str = Field(description="Short name used in reports, e.g. l1, l2, dram.")
    size_bytes: float | None = Field(description="Capacity in bytes; null for the outermost (unbounded).")
    bandwidth_bytes_per_s: float = Field(gt=0, description="Sustained bandwidth in bytes per second.")
    read_energy_pj_per_bit: float = Field(ge=0, description="Read energy per bit, pJ.")
    write_energy_pj_per_bit: float = Field(ge=0, description="Write energy per bit, pJ.")
    source: str = Field(description="Where the numbers come from.")

    _src = field_validator("source")(classmethod(lambda cls, v: _need_source(v)))

    @field_validator("size_bytes")
    @classmethod
    def _size(cls, v):
        if v is not None and v <= 0:
            raise ValueError("size_bytes must be > 0 (or null for the outermost level)")
        return v


class NMPattern(_Record):
    """An N:M structured sparsity pattern the unit skips (N kept of every M)."""

    n: int = Field(ge=1, description="Non-zeros kept per group.")
    m: int = Field(ge=2, description="Group size along the reduction axis.")

    @model_validator(mode="after")
    def _nm(self):
        if self.n >= self.m:
            raise ValueError(f"N:M needs n < m, got {self.n}:{self.m} (e.g. n: 2, m: 4)")
        return self


class RunLengthCoding(_Record):
    """Feature maps stored run-length coded at one memory level: each ``run_bits`` count of zeros is followed by
    one ``level_bits`` value, ``pairs_per_word`` pairs packed in a ``word_bits`` word (Eyeriss' RLC)."""

    level: str = Field(description="Memory level the coded feature maps are stored in (e.g. dram).")
    run_bits: int = Field(ge=1, le=16, description="Bits of a zero-run count (runs up to 2^run_bits - 1).")
    level_bits: int = Field(ge=1, description="Bits of the value after a run.")
    pairs_per_word: int = Field(ge=1, description="(run, value) pairs per word.")
    word_bits: int = Field(ge=1, description="Bits of one coded word (pairs plus any flag bits).")
    source: str = Field(description="Where the code comes from.")

    _src = field_validator("source")(classmethod(lambda cls, v: _need_source(v)))

    @model_validator(mode="after")
    def _fits(self):
        if self.pairs_per_word * (self.run_bits + self.level_bits) > self.word_bits:
            raise ValueError(f"{self.pairs_per_word} pairs of {self.run_bits} + {self.level_bits} bits do not fit a "
                             f"{self.word_bits}-bit word")
        return self

    def coded_fraction(self, zero_fraction: float, element_bits: float) -> float:
        """Stored bits over plain bits of a map whose elements are zero independently with ``zero_fraction``:
        a pair covers a run of zeros and the value ending it, min(geometric, 2^run_bits) elements on average;
        at most 1 (where coding would expand the map it is stored plain: assumption)."""
        z, longest = zero_fraction, 2 ** self.run_bits
        elements_per_pair = (1 - z ** longest) / (1 - z)
        return min(1.0, self.word_bits / self.pairs_per_word / elements_per_pair / element_bits)


class Features(_Record):
    """Data-dependent savings the hardware can exploit."""

    skip_zero_weights: bool = Field(False, description="Zero weights cost no MAC and no cycle.")
    skip_zero_activations: bool = Field(False, description="MACs with a zero activation are gated: no MAC "
                                        "energy (no time saved). Applies to inputs produced by a ReLU.")
    activation_zero_fraction: float = Field(0.0, ge=0, lt=1, description="Assumed zero fraction of ReLU "
                                            "outputs (activations are not known to an estimate).")
    nm_sparsity: tuple[NMPattern, ...] = Field((), description="Structured patterns skipped at m/n speed.")
    repetition_window: int | None = Field(None, ge=2, description="UCNN reuse: weights are split into windows "
                                          "of this many along the reduction axis; each unique window pattern "
                                          "is summed once and shared by every output channel using it.")
    bit_serial: bool = Field(False, description="MAC time scales with weight bits (Stripes).")
    fmap_coding: RunLengthCoding | None = Field(None, description="Activations (not the network's inputs) are "
                                                "stored run-length coded at this level; ReLU outputs at "
                                                "activation_zero_fraction zeros.")
    source: str = Field("assumption: none", description="Where the features come from.")


class Area(_Record):
    """What the area model needs beyond the rest of the target (hwsim.cost.area prices it)."""

    sram_levels: tuple[str, ...] = Field(description="Memory levels built as on-chip SRAM macros; their "
                                                     "size_bytes is priced at the node's bitcell area.")
    other_mm2: float = Field(ge=0, description="Everything else on the die (vector unit, control, DMA, PHYs), mm^2.")
    source: str = Field(description="Where other_mm2 comes from (citation or 'assumption: ...').")

    _src = field_validator("source")(classmethod(lambda cls, v: _need_source(v)))


class Validation(_Record):
    """Measurements a target is held against, and the drift it tolerates (``hwsim validate``)."""

    measurements: tuple[str, ...] = Field(min_length=1, description="JSONL measurement files, relative to the "
                                          "target file's folder (bundled: targets/).")
    latency_tolerance: float = Field(gt=0, description="Relative latency error counted as agreement, e.g. 0.25.")
    energy_tolerance: float | None = Field(None, gt=0, description="Relative energy error counted as agreement; "
                                           "null = energy not checked.")
    min_fraction_within: float = Field(gt=0, le=1, description="validate fails when fewer records than this "
                                       "fraction are within tolerance.")
    source: str = Field(description="What the measurements are (machine, date, script or paper and table).")

    _src = field_validator("source")(classmethod(lambda cls, v: _need_source(v)))


class Target(_Record):
    """A hardware target as read from YAML (after ``extends:`` is resolved)."""

    schema_version: int = Field(description=f"This hwsim reads version {SCHEMA_VERSION}.")
    name: str = Field(description="Target name.")
    description: str = Field(description="One line shown by `hwsim targets`.")
    extends: str | None = Field(None, description="Bundled target name or YAML path this one modifies.")
    technology_nm: float = Field(gt=0, description="Process node in nm (scales energy per gate).")
    energy_per_gate_fj: float | None = Field(None, gt=0, description="Override of the gate energy, fJ; "
                                             "null = Horowitz 45 nm calibration scaled by technology_nm / 45.")
    clock_hz: float = Field(description="Clock frequency, Hz (1 kHz .. 100 GHz; outside that range a value is "
                                        "a unit slip, e.g. GHz written as Hz).")
    static_power_w: float = Field(ge=0, description="Leakage and always-on power while running, W.")
    layer_overhead_s: float = Field(0.0, ge=0, description="Fixed time per layer (kernel launch, sync), s.")
    activation_scope: Literal["all", "mac_inputs"] = Field(
        "all", description="Which activations this target keeps in the activation format when neither a quant "
                           "config nor the caller sets a scope (hwsim.graph.annotate, 'scope'): 'all' (default: "
                           "an integer datapath that stores every tensor, pooling, norm and activation-function "
                           "outputs included, in the activation format, as accelerators and full-integer "
                           "runtimes such as TFLite do) or 'mac_inputs' (only what conv / linear / matmul read; "
                           "the rest is stored fp32, as onnxruntime's QDQ models restricted to MatMul/Conv).")
    elementwise_overhead_s: float | None = Field(None, ge=0, description="Fixed time per non-MAC layer "
                                                 "(elementwise, norm, pooling kernels), s; null = layer_overhead_s.")
    convolution_overhead_s: float | None = Field(None, ge=0, description="Fixed time per convolution layer "
                                                 "(implicit-GEMM kernels and their set-up), s; null = "
                                                 "layer_overhead_s.")
    energy_scope: Literal["board", "chip", "core"] | None = Field(
        None, description="What the energy model covers: 'board' = the whole board or module with its memory "
                          "and static power (as NVML or a wall meter measures); 'chip' = the die, plus the "
                          "energy of the DRAM accesses where the target prices a DRAM level; 'core' = the "
                          "compute core alone; null = not stated. validate compares energy only where a "
                          "measurement's scope is the same.")
    idle_power_w: float | None = Field(None, ge=0, description="Power floor of the powered-on, clocked unit "
                                       "with no core working; a layer draws it plus the cores' active power "
                                       "(static_power_w - idle_power_w) times the fraction of cores its kernel "
                                       "occupies, from launch to tail; null = static_power_w throughout.")
    power_cap_w: float | None = Field(None, gt=0, description="Power limit: when a layer's static + dynamic power "
                                      "would exceed it, the clock throttles and the layer stretches until it fits.")
    validation: Validation | None = Field(None, description="Measurements this target is validated against; "
                                          "null = uncalibrated.")
    source: str = Field(description="Source of clock, technology, static power and overhead.")
    compute: ComputeUnit
    memory: tuple[MemoryLevel, ...] = Field(min_length=1, description="Innermost first; last is unbounded.")
    features: Features = Field(default_factory=Features)
    area: Area | None = Field(None, description="Silicon area inputs; null for targets that do not describe "
                                                "a chip (CPUs, GPUs): then no area_mm2 is reported.")

    _src = field_validator("source")(classmethod(lambda cls, v: _need_source(v)))

    @field_validator("clock_hz")
    @classmethod
    def _clock(cls, v: float) -> float:
        if not 1e3 <= v <= 1e11:
            raise ValueError(f"{v:g} Hz is outside 1 kHz .. 100 GHz; give the clock in Hz, e.g. 1.5e9")
        return v

    @model_validator(mode="after")
    def _levels(self):
        if self.schema_version != SCHEMA_VERSION:
            raise ValueError(f"schema_version {self.schema_version} is not supported; use {SCHEMA_VERSION}")
        names = [m.name for m in self.memory]
        if len(set(names)) != len(names):
            raise ValueError(f"memory level names must be unique, got {names}")
        taken = sorted(set(names) & set(NON_MEMORY_BOTTLENECKS))
        if taken:
            raise ValueError(f"memory level name(s) {taken} are bottleneck labels of their own "
                             f"({', '.join(NON_MEMORY_BOTTLENECKS)}): a layer bound by that level would read as bound "
                             "by something else; rename the level (e.g. 'sram', 'dram')")
        if self.idle_power_w is not None and self.idle_power_w > self.static_power_w:
            raise ValueError(f"idle_power_w ({self.idle_power_w}) must not exceed static_power_w "
                             f"({self.static_power_w}), the power while every core works")
        if self.power_cap_w is not None and self.power_cap_w <= self.static_power_w:
            raise ValueError(f"power_cap_w ({self.power_cap_w}) must exceed static_power_w ({self.static_power_w})")
        if self.memory[-1].size_bytes is not None:
            raise ValueError("the last memory level is the unbounded backing store: set its size_bytes: null")
        if any(m.size_bytes is None for m in self.memory[:-1]):
            raise ValueError("only the last memory level may have size_bytes: null")
        for i, (inner, outer) in enumerate(zip(self.memory[:-2], self.memory[1:-1])):
            if inner.size_bytes > outer.size_bytes:
                raise ValueError(f"memory[{i}] '{inner.name}' ({inner.size_bytes:g} B) is larger than memory[{i + 1}] "
                                 f"'{outer.name}' ({outer.size_bytes:g} B); list levels innermost (smallest) first")
        coding = self.features.fmap_coding
        if coding is not None and coding.level not in names:
            raise ValueError(f"features.fmap_coding.level {coding.level!r}: name a memory level ({', '.join(names)})")
        bounded = [m.name for m in self.memory if m.size_bytes is not None]
        bad = [n for n in (self.area.sram_levels if self.area else ()) if n not in bounded]
        if bad:
            raise ValueError(f"area.sram_levels {bad}: name memory levels with a size_bytes ({', '.join(bounded)})")
        return self

    @property
    def peak_macs_per_s(self) -> float:
        """Best MAC rate over all pairs, MAC/s (cores x clock x rate)."""
        return max(r.macs_per_cycle for r in self.compute.rates) * self.compute.cores * self.clock_hz
