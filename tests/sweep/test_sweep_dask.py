"""hwsim sweep on real Dask: a scheduler and two worker processes on localhost (no mocks).

One local-cluster run (one worker process) is the reference; the same SPEC through the scheduler's
address (two workers), with a worker killed mid-sweep, and interrupted then resumed, must give the
same file byte for byte.
"""

import os
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from hwsim.sweep import parse_spec, run_sweep

SPEC = {
    "models": ["resnet18"],
    "targets": [{"base": "int8-npu", "vary": {"compute.rows": [16, 32, 64], "compute.cols": [16, 64],
                                              "memory.sram.size_bytes": ["512KiB", "8MiB"]}}],
    "quantization": [{"weights": "int8", "activations": "int8"}, {"weights": "int4", "activations": "int8"}],
    "objectives": ["latency_s", "energy_j", "area_mm2"],
}
N = 3 * 2 * 2 * 2


def _dask(*args, **kw):
    exe = Path(sys.executable).with_name("dask")
    return subprocess.Popen([str(exe), *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kw)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A scheduler and two single-threaded worker processes without nannies (a kill is final)."""
    d = tmp_path_factory.mktemp("dask")
    sched_file = d / "scheduler.json"
    procs = [_dask("scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                   "--scheduler-file", str(sched_file))]
    try:
        for _ in range(200):
            if sched_file.is_file() and sched_file.stat().st_size:
                break
            time.sleep(0.1)
        import json

        address = json.loads(sched_file.read_text())["address"]
        for _ in range(2):
            procs.append(_dask("worker", address, "--nthreads", "1", "--no-nanny", "--no-dashboard",
                               "--preload", "hwsim.sweep.worker"))
        from distributed import Client

        with Client(address) as c:
            c.wait_for_workers(2, timeout=60)
        yield address, procs[1:]
    finally:
        for p in procs:  # only the processes this fixture started
            if p.poll() is None:
                p.kill()
            p.wait()


@pytest.fixture(scope="module")
def reference(cluster, tmp_path_factory):  # the cluster's workers import hwsim meanwhile
    out = tmp_path_factory.mktemp("local") / "local.parquet"
    res = run_sweep(parse_spec(SPEC, "spec"), out, workers=1)  # the remote runs use 2: same bytes expected
    assert res.computed == N and res.workers == 1
    return out


@pytest.mark.slow
def test_local_run_rows(reference):
    t = pq.read_table(reference)
    assert t.num_rows == N
    assert set(t.column("status").to_pylist()) == {"ok"}
    assert len(set(t.column("point_id").to_pylist())) == N
    assert any(t.column("pareto").to_pylist())
    assert not os.path.exists(str(reference) + ".parts")


@pytest.mark.slow
def test_cluster_address_with_a_worker_killed_mid_sweep(cluster, reference, tmp_path):
    address, workers = cluster
    victim = workers[0]
    seen = []

    def progress(done, total, elapsed):
        seen.append(done)
        if len(seen) == 1:
            victim.kill()  # lose a worker (and any results it held) while tasks remain

    out = tmp_path / "remote.parquet"
    res = run_sweep(parse_spec(SPEC, "spec"), out, cluster=address, batch_size=1, progress=progress)
    assert victim.poll() is not None and len(seen) > 1
    ids = pq.read_table(out).column("point_id").to_pylist()
    assert sorted(ids) == sorted(set(ids)) and len(ids) == N  # every point exactly once
    assert res.computed == N
    assert out.read_bytes() == reference.read_bytes()


@pytest.mark.slow
def test_resume_after_an_interrupt(cluster, reference, tmp_path):
    address, _ = cluster

    def stop(done, total, elapsed):
        if done >= 5:
            raise KeyboardInterrupt

    out = tmp_path / "r.parquet"
    with pytest.raises(KeyboardInterrupt):
        run_sweep(parse_spec(SPEC, "spec"), out, cluster=address, batch_size=1, progress=stop)
    kept = pq.read_table(out).num_rows
    assert 5 <= kept < N  # finished rows survive the interrupt
    res = run_sweep(parse_spec(SPEC, "spec"), out, cluster=address, batch_size=3, resume=True)
    assert res.skipped == kept and res.computed == N - kept
    assert out.read_bytes() == reference.read_bytes()


@pytest.mark.slow
def test_cli_through_the_address(cluster, reference, tmp_path, capsys):
    import json

    import yaml

    from hwsim.cli import main

    address, _ = cluster
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(SPEC, sort_keys=False))
    out, png = tmp_path / "cli.parquet", tmp_path / "front.png"
    assert main(["sweep", str(spec), "--out", str(out), "--cluster", address, "--plot", str(png), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["points"] == N and summary["status"]["ok"] == N and summary["front"]
    assert all(r["pareto"] for r in summary["front"]) and png.stat().st_size > 1000
    assert out.read_bytes() == reference.read_bytes()
    assert main(["sweep", str(spec), "--out", str(out), "--cluster", address, "--workers", "2"]) == 2
    assert "workers applies to the local cluster" in capsys.readouterr().err
    spec.write_text("models: [resnet18]\ntargets: [{base: int8-npu}]\nquantization: [{weights: int8}]\nobjective: []\n")
    assert main(["sweep", str(spec), "--out", str(out)]) == 2
    assert "objective: unknown field" in capsys.readouterr().err
