"""A Target as YAML text (fields in schema order, unset optional fields left out)."""

from __future__ import annotations

import yaml

from hwsim.targets import Target


def target_yaml(t: Target, header: str = "") -> str:
    """YAML that :func:`hwsim.targets.load_target` reads back to an equal Target (``header`` lines
    become ``#`` comments at the top)."""
    d = t.model_dump()
    for key in [k for k, v in d.items() if v is None]:  # top-level optional fields left unset
        del d[key]
    head = "".join(f"# {line}\n" for line in header.splitlines())
    return head + yaml.safe_dump(d, sort_keys=False, width=110, allow_unicode=True)
