"""Make ``tests.formats.reference`` importable under plain ``pytest`` (not only ``python -m``).

The repository root is not on ``sys.path`` when pytest runs as a script and ``tests/`` has no
``__init__.py``; a ``pythonpath = ["."]`` entry in pyproject's pytest options would do the same.
"""

import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)
