"""A float reference read while it is being computed.

About half of the float reference's run uses one CPU (its elementwise ops and patch copies; only
its products are shared out, :mod:`hwsim.sim.refblas`), so work that reads it value by value
can run beside it: :class:`ArrivingReference` computes it on a thread of its own and serves each
value as soon as it has been made; a reader of a value not made yet waits for it.

- Sensitivity (:mod:`hwsim.solve.output_error`): the layers are independent of each other and
  each reads only the reference values of its own neighbourhood until it scores its outputs at
  the end, so they start while the reference is still being computed.
- :func:`hwsim.sim.runner.run`: the quantized run needs the reference of an op's output only for
  that op's metrics (when no activation scale is calibrated on the reference), so the two run
  side by side.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from typing import Callable

from hwsim.graph.ir import Graph


class ReferenceFailed(Exception):
    """The reference's own computation raised; :meth:`ArrivingReference.result` raises its error."""


class _Filling(dict):
    """The dict the reference is computed into; each value stored wakes the waiting readers."""

    def __init__(self):
        super().__init__()
        self.changed = threading.Condition()
        #: values taken out again (:class:`hwsim.sim.runner._Release`): a reader asking for one
        #: is told at once instead of waiting for a value that will not come
        self.gone: set[str] = set()

    def __setitem__(self, name, value) -> None:
        with self.changed:
            super().__setitem__(name, value)
            self.changed.notify_all()

    def update(self, *args, **kwargs) -> None:
        with self.changed:
            super().update(*args, **kwargs)
            self.changed.notify_all()


def reference_names(graph: Graph) -> set[str]:
    """Names the float reference of ``graph`` holds: its constants, inputs, KV caches and every
    op output (what :func:`hwsim.sim.runner.float_reference` computes)."""
    names = {n for n, t in graph.tensors.items() if t.data is not None or t.role == "kv_cache"}
    return names | set(graph.inputs) | {t for op in graph.ops() for t in op.outputs}


class ArrivingReference(Mapping):
    """Tensor name -> float reference value (float64 array), computed by ``compute(into)`` on a
    thread started here: ``compute`` stores the values in the dict ``into`` as it makes them
    (:func:`hwsim.solve.output_error.float_values` with ``into``). Reading a value not made yet
    waits for it; ``name in`` answers for the names the finished reference will hold
    (``names``). A reader waiting when the computation fails gets :class:`ReferenceFailed`;
    :meth:`result` waits for the end and raises the computation's own error."""

    def __init__(self, names: set[str], compute: Callable[[dict], object]):
        from hwsim.sim.refvalues import real_of

        self._real_of = real_of
        self._names = names
        #: calibrations made on these values by their readers (``memo`` of
        #: :func:`hwsim.sim.runner.calibrate_graph`, tensor names of the graph)
        self.calibrated: dict = {}
        self._values = _Filling()
        self._done = False
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(compute,), name="hwsim-reference", daemon=True)
        self._thread.start()

    def _run(self, compute) -> None:
        try:
            compute(self._values)
        except BaseException as exc:  # handed to the readers and to result()
            self._error = exc
        finally:
            with self._values.changed:
                self._done = True
                self._values.changed.notify_all()

    def __getitem__(self, name: str):
        return self._real_of(self.raw(name))  # a deferred value: as RefValues reads it

    def raw(self, name: str):
        """The value as stored (possibly deferred, as :meth:`hwsim.sim.refvalues.RefValues.raw`),
        waited for if not made yet."""
        values = self._values
        if not dict.__contains__(values, name):
            with values.changed:
                values.changed.wait_for(lambda: dict.__contains__(values, name) or self._done or name in values.gone)
                if name in values.gone:
                    raise KeyError(f"the float reference's value of '{name}' was dropped before this read")
            if not dict.__contains__(values, name):
                if self._error is not None:
                    raise ReferenceFailed(f"the float reference failed: {self._error}")
                raise KeyError(name)
        return dict.__getitem__(values, name)

    def __contains__(self, name) -> bool:
        return dict.__contains__(self._values, name) or (not self._done and name in self._names)

    @property
    def condition(self) -> threading.Condition:
        """The condition notified at every value stored and when the computation ends."""
        return self._values.changed

    def made(self, name: str) -> bool:
        """Whether the value of ``name`` has been stored (no waiting); also once it has been
        dropped again (its reader is then told so at once by :meth:`raw`)."""
        return dict.__contains__(self._values, name) or name in self._values.gone

    @property
    def finished(self) -> bool:
        """Whether the computation has ended (completed or failed)."""
        return self._done

    @property
    def failed(self) -> bool:
        """Whether the computation has ended with an error."""
        return self._done and self._error is not None

    def __iter__(self) -> Iterator[str]:
        self.result()
        return iter(dict(self._values))

    def __len__(self) -> int:
        self.result()
        return len(self._values)

    def result(self) -> None:
        """Wait until the reference is complete; raise its error if it failed."""
        self._thread.join()
        if self._error is not None:
            raise self._error
