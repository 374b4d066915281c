"""Quantization annotations carried by IR tensors, and pruning choices carried by layers.

A :class:`QuantSpec` says how a tensor's real values are represented:
``real = scale * (code - zero_point)`` for integer formats, ``real = scale * value`` for float,
block and codebook formats (scale 1 when absent). ``scale`` is ``None`` until calibrated (the
simulator calibrates max-abs scales from data); shapes of scale and zero point follow
``granularity``: one value per tensor, one per channel along ``axis``, or one per group of
``group_size`` consecutive elements along ``axis``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from hwsim.errors import UnknownFormatError


def canonical_format(name: str) -> str:
    """Validate a format name through ``hwsim.formats`` and return its canonical spelling."""
    from hwsim import formats

    try:
        return formats.get(name).name
    except UnknownFormatError:
        raise
    except Exception as exc:  # a malformed name that the parser rejects in another way
        raise UnknownFormatError(f"unknown format {name!r}: {exc}") from None


class QuantSpec(BaseModel):
    """Format and quantization parameters of one tensor."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: str = Field("fp32", description="Format name as hwsim.formats.get() spells it.")
    scale: tuple[float, ...] | None = Field(None, description="Scale(s); None = not yet calibrated.")
    zero_point: tuple[int, ...] | None = Field(None, description="Zero point(s) in code units; None = 0.")
    granularity: Literal["tensor", "channel", "group"] = Field("tensor", description="Scale sharing.")
    axis: int | None = Field(None, description="Channel / group axis for channel or group granularity.")
    group_size: int | None = Field(None, ge=1, description="Elements per group for group granularity.")

    @field_validator("format")
    @classmethod
    def _known_format(cls, v: str) -> str:
        return canonical_format(v)

    @model_validator(mode="after")
    def _consistent(self) -> "QuantSpec":
        if self.granularity == "channel" and self.axis is None:
            raise ValueError("granularity 'channel' needs an axis (e.g. axis: 0 for output channels)")
        if self.granularity == "group" and (self.axis is None or self.group_size is None):
            raise ValueError("granularity 'group' needs axis and group_size (e.g. group_size: 128)")
        if self.granularity == "tensor":
            for field in ("scale", "zero_point"):
                v = getattr(self, field)
                if v is not None and len(v) != 1:
                    raise ValueError(f"per-tensor {field} must have one value, got {len(v)}")
        if self.scale is not None and any(not (s > 0) for s in self.scale):
            raise ValueError("scales must be positive and finite")
        return self

    @property
    def bits(self) -> float:
        """Effective storage bits per element (shared block scales included)."""
        from hwsim import formats

        return float(formats.get(self.format).bits_per_element)

    @property
    def is_float32(self) -> bool:
        return self.format == "fp32"


FP32 = QuantSpec()


class Pruning(BaseModel):
    """How a layer's weights are pruned: the 0-bit end of the format choice.

    ``unstructured``: the ``amount`` fraction of smallest-magnitude weights set to zero.
    ``nm``: in every group of ``m`` consecutive weights along the input axis keep the ``n`` largest.
    ``channel``: the ``amount`` fraction of output channels (rows) with the smallest L2 norm removed.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["none", "unstructured", "nm", "channel"] = "none"
    amount: float = Field(0.0, ge=0.0, lt=1.0, description="Fraction pruned (unstructured, channel).")
    n: int | None = Field(None, ge=1, description="Kept weights per group of m (nm).")
    m: int | None = Field(None, ge=2, description="Group size (nm).")

    @model_validator(mode="after")
    def _consistent(self) -> "Pruning":
        if self.kind == "nm" and (self.n is None or self.m is None or self.n >= self.m):
            raise ValueError("N:M pruning needs n < m, e.g. {kind: nm, n: 2, m: 4}")
        if self.kind in ("unstructured", "channel") and self.amount <= 0:
            raise ValueError(f"{self.kind} pruning needs amount in (0, 1), e.g. amount: 0.5")
        return self

    @property
    def density(self) -> float:
        """Fraction of weights kept."""
        if self.kind == "nm":
            return self.n / self.m  # type: ignore[operator]
        return 1.0 - self.amount

    @property
    def label(self) -> str:
        """Short spelling used in tables and CLI choices: 0, 50%, 2:4, ch25%."""
        if self.kind == "none":
            return "0"
        if self.kind == "nm":
            return f"{self.n}:{self.m}"
        pct = f"{round(self.amount * 100, 4):g}%"
        return pct if self.kind == "unstructured" else "ch" + pct

    @classmethod
    def parse(cls, text: str) -> "Pruning":
        """Parse the CLI spelling: ``0`` (none), ``50%`` or ``0.5`` (unstructured), ``2:4`` (N:M), ``ch25%``."""
        t = str(text).strip()
        try:
            if t in ("0", "none", "0%"):
                return cls()
            if ":" in t:
                n, m = (int(v) for v in t.split(":"))
                return cls(kind="nm", n=n, m=m)
            kind = "channel" if t.startswith("ch") else "unstructured"
            t = t[2:] if kind == "channel" else t
            amount = float(t[:-1]) / 100 if t.endswith("%") else float(t)
            return cls(kind=kind, amount=amount)
        except ValueError as exc:
            from pydantic import ValidationError

            from hwsim.errors import ConfigError

            detail = exc.errors()[0]["msg"].removeprefix("Value error, ") if isinstance(exc, ValidationError) else exc
            raise ConfigError(
                f"bad pruning {text!r}: use 0, 50% (unstructured), 2:4 (N:M) or ch25% (channels) ({detail})"
            ) from None


NO_PRUNING = Pruning()


def pruning_problem(pruning: Pruning, weight_format: str, weight_shape: tuple[int, ...]) -> str | None:
    """Why ``pruning`` cannot be honoured on a weight of this format and shape, or None.

    N:M needs M to divide the reduction length (all axes after axis 0); a format that cannot hold
    a zero (binary, codebooks: ``Format.has_zero``) would turn pruned weights back into non-zeros.
    """
    from hwsim import formats

    if pruning.kind == "none":
        return None
    if not formats.get(weight_format).has_zero:
        return (f"pruning {pruning.label} with {weight_format} weights: the format has no zero, so pruned "
                f"weights would not stay zero; use pruning 0 or a format with a zero (e.g. ternary)")
    k = 1
    for d in weight_shape[1:]:
        k *= d
    if pruning.kind == "nm" and k % pruning.m:  # type: ignore[operator]
        return f"N:M pruning {pruning.label} needs the reduction length {k} divisible by {pruning.m}"
    return None
