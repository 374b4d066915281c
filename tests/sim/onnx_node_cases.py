"""ONNX's own node-test cases, as the generators shipped in the onnx wheel write them
(``onnx/backend/test/case/node/<module>.py``): one collector for every test that runs them as shipped."""

from __future__ import annotations

import importlib

import numpy as np


def collect(modules) -> list[tuple]:
    """(name, node, inputs, outputs) of every case the ``export*`` generators of ``modules`` emit.

    Each module's ``expect`` is swapped for a recorder while its generators run, then restored;
    numpy warnings raised while generating (overflow in saturation cases) are silenced.
    """
    cases = []
    for m in modules:
        mod = importlib.import_module(f"onnx.backend.test.case.node.{m}")
        saved = mod.expect
        mod.expect = lambda node, inputs, outputs, name, **kw: cases.append((name, node, inputs, outputs))
        try:
            for cls in vars(mod).values():
                if isinstance(cls, type) and cls.__module__ == mod.__name__:
                    for k, f in vars(cls).items():
                        if k.startswith("export"):
                            with np.errstate(all="ignore"):
                                f.__func__() if isinstance(f, staticmethod) else f()
        finally:
            mod.expect = saved
    return cases
