"""Exceptions users see. Each message says what was wrong and how to fix the input.

The CLI catches :class:`HwsimError` and prints ``error: <message>`` with exit status 2 (1 for
internal errors), so no user mistake ends in a traceback.
"""

from __future__ import annotations


class HwsimError(Exception):
    """Base class of every error caused by user input.

    ``param`` names the library parameter the error is about (e.g. ``"choices"``) when there is
    one; a library message then starts with that name, and the CLI puts its flag in its place.
    """

    exit_code = 2

    def __init__(self, *args, param: str | None = None):
        super().__init__(*args)
        self.param = param


class UnknownFormatError(HwsimError):
    """A format name that hwsim cannot parse."""


class UnknownModelError(HwsimError):
    """A model name that is neither a zoo model, a model YAML nor an ONNX file."""


class UnknownTargetError(HwsimError):
    """A target name that is neither bundled nor a YAML path."""


class UnsupportedOpError(HwsimError):
    """One or more ops in an imported model that hwsim does not handle."""


class ShapeError(HwsimError):
    """Shapes that do not match, or a dynamic dimension left unbound."""


class ConfigError(HwsimError):
    """A malformed YAML file (model, quant config or target) or a bad option value."""


class GraphError(HwsimError):
    """An IR graph that breaks a per-op rule in verify()."""


class InputDataError(HwsimError):
    """Input tensors that are missing, mis-shaped, mis-typed or hold NaN where not allowed."""


class InfeasibleBudgetError(HwsimError):
    """Budgets that no choice of formats and pruning can meet."""


class MemoryLimitError(HwsimError):
    """A run whose estimated memory exceeds what the machine has available (refused up front)."""
