"""``run_sweep``: expand a SPEC, measure sensitivities once, run batches on Dask, store the rows.

Execution is Dask's (``dask.distributed``): with no address a local cluster of worker processes
is started here and closed at the end; with an address (``tcp://HOST:8786``) an existing
scheduler and its workers are used, which is how sweeps reach SLURM / PBS / LSF (dask-jobqueue)
or Kubernetes (dask-kubernetes). Points go out in batches, one task each. The client writes
every row (:mod:`hwsim.sweep.store`), so a task that runs twice after a worker is lost cannot
duplicate a point, and one that never finished is rescheduled by Dask. Rows depend only on the
SPEC: not on the number of workers, the batch size or the order results arrive in.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from hwsim.errors import ConfigError
from hwsim.sweep.space import Space, plan
from hwsim.sweep.spec import SweepSpec, load_spec
from hwsim.sweep.store import Store, schema
from hwsim.sweep.worker import Job, run_batch

#: progress(done points, points to do, elapsed seconds) after every batch
Progress = Callable[[int, int, float], None]


@dataclass(frozen=True)
class SweepResult:
    """What a sweep produced."""

    out: Path
    table: object            # pyarrow.Table of every row in ``out``
    computed: int            # points computed by this run
    skipped: int             # points already present (--resume)
    elapsed_s: float
    workers: int
    params: list[str]        # the varied target fields (parameter columns)


def _digest(path: str) -> str | None:
    p = Path(path)
    return hashlib.sha1(p.read_bytes()).hexdigest() if p.is_file() else None


def _sensitivities(space: Space) -> tuple[dict, dict, dict]:
    """Graphs, sensitivity tables per model and choices per solve entry, measured once here."""
    spec = space.spec
    if not spec.solves and spec.accuracy is None:
        return {}, {}, {}
    from hwsim.solve.api import tables
    from hwsim.solve.choices import Choice, choices_for
    from hwsim.targets import load_target

    base = load_target(spec.targets[0].base)
    choices = {}
    for j, q in enumerate(spec.quantization):
        if q.solve is not None:
            try:
                choices[j] = choices_for(q.solve.choices, base)
            except ConfigError as exc:
                raise ConfigError(f"quantization[{j}].solve.choices: {exc}") from None
    union = list(dict.fromkeys(c for cs in choices.values() for c in cs))
    if spec.accuracy is not None:
        union += [c for c in (Choice(weight_format=q.weights, activation_format=q.activations)
                              for q in spec.quantization if q.solve is None) if c not in union]
    acc = spec.accuracy
    metric = acc.metric if acc else "proxy"
    graphs, sens = {}, {}
    for m in spec.models:
        tb = tables(m, base, choices=union, metric=metric, calib=acc.calib if acc else None,
                    samples=acc.samples if acc else None, seed=spec.seed)
        graphs[m], sens[m] = tb.graph, tb.sensitivity
    return graphs, sens, choices


def make_job(space: Space) -> Job:
    """The worker's side of the sweep (sensitivities measured here, once per model)."""
    spec = space.spec
    graphs, sens, choices = _sensitivities(space)
    budgets = list(dict.fromkeys(k for q in spec.solves for k in q.solve.budgets.limits()))
    keys = {m: _digest(m) or m for m in spec.models}
    keys.update({q.config: _digest(q.config) for q in spec.quantization if q.config})
    base_keys = [hashlib.sha1(repr(raw).encode()).hexdigest() for raw, _ in space.bases]
    return Job(spec, space.bases, space.levels, budgets, base_keys, keys, graphs, sens, choices)


def _batches(points: list, workers: int, batch_size: int | None) -> list[list]:
    size = batch_size or max(1, min(256, len(points) // (8 * max(1, workers)) or 1))
    return [points[i:i + size] for i in range(0, len(points), size)]


def _client(cluster: str | None, workers: int | None):
    """(client, local cluster or None, worker count)."""
    import logging

    from distributed import Client, LocalCluster

    if cluster is not None:
        try:
            client = Client(cluster, timeout="20s")
        except (OSError, TimeoutError) as exc:
            raise ConfigError(f"cannot reach a Dask scheduler at {cluster!r} ({exc}); start one with "
                              "`dask scheduler` and workers with `dask worker ADDRESS`") from None
        return client, None, max(1, len(client.scheduler_info().get("workers", {})))
    n = workers or os.cpu_count() or 1
    # ":0": any free port for the HTTP endpoint (None still binds the default 8787, taken on shared hosts)
    local = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=":0",
                         silence_logs=logging.ERROR)
    return Client(local), local, n


def run_sweep(spec: SweepSpec | str | Path, out: str | Path, cluster: str | None = None, workers: int | None = None,
              resume: bool = False, batch_size: int | None = None, progress: Progress | None = None) -> SweepResult:
    """Run a sweep and write its rows to ``out`` (Parquet).

    Parameters
    ----------
    spec : SweepSpec or path of a SPEC YAML
    out : path of the Parquet file written (rows of finished points survive an interrupt)
    cluster : address of an existing Dask scheduler, e.g. ``tcp://10.0.0.1:8786``; None starts a local one
    workers : worker processes of the local cluster (default: CPU count); not with ``cluster``
    resume : keep rows already in ``out`` and compute only the missing points
    batch_size : points per Dask task (default: about 8 tasks per worker, at most 256 points each)
    progress : called after every batch with (points done, points to do, seconds elapsed)
    """
    if cluster is not None and workers is not None:
        raise ConfigError("workers applies to the local cluster; with a cluster address the scheduler's workers run "
                          "the sweep (drop one of the two)")
    spec = spec if isinstance(spec, SweepSpec) else load_spec(spec)
    space = plan(spec)
    job = make_job(space)
    store = Store(out, schema(space.param_types, space.levels, job.budget_names), resume)
    todo = [p for p in space.points if p.point_id not in store.done]
    start, done, n_workers = time.perf_counter(), 0, 0
    try:
        if todo:
            n_workers, done = _execute(job, todo, store, cluster, workers, batch_size, progress, start)
    finally:
        table = store.finish(list(spec.objectives))
    return SweepResult(Path(out), table, done, len(space.points) - len(todo), time.perf_counter() - start, n_workers,
                       list(space.param_types))


def _execute(job: Job, todo: list, store: Store, cluster, workers, batch_size, progress, start) -> tuple[int, int]:
    from distributed import as_completed

    client, local, n = _client(cluster, workers)
    futures = []
    try:
        token = hashlib.sha1(f"{time.time_ns()}-{os.getpid()}".encode()).hexdigest()[:12]
        job_future = client.scatter(job, broadcast=True, hash=False)
        for i, batch in enumerate(_batches(todo, n, batch_size)):
            futures.append(client.submit(run_batch, job_future, batch, key=f"hwsim-sweep-{token}-{i}", pure=False))
        done = 0
        for fut in as_completed(futures):
            done += store.append(fut.result())
            if progress is not None:
                progress(done, len(todo), time.perf_counter() - start)
        return n, done
    finally:
        for f in futures:
            f.cancel()
        client.close()
        if local is not None:
            local.close()
