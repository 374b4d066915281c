"""Hardware targets: the pydantic schema of ``targets/*.yaml`` and :func:`load_target`."""

from hwsim.targets.load import bundled_targets, load_target
from hwsim.targets.schema import Area, ComputeUnit, Features, MacRate, MemoryLevel, NMPattern, Target

__all__ = ["Target", "Area", "ComputeUnit", "MacRate", "MemoryLevel", "Features", "NMPattern", "load_target",
           "bundled_targets"]
