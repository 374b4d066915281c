"""``hwsim solve`` through hwsim.cli.main and once through ``python -m hwsim``."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys

import numpy as np
import pytest
from solve_paths import CALIB, CHOICES, DIGITS

from hwsim.cli import main
from hwsim.cost import estimate


def _args(cache_dir, *extra):
    return ["solve", DIGITS, "--target", "rs-engine", "--choices", CHOICES, "--calib", CALIB, "--samples", "16",
            "--cache-dir", str(cache_dir), "--quiet", *extra]


def test_json_shape_and_write_config_round_trip(cache_dir, tmp_path, capsys):
    plan_yaml = tmp_path / "plan.yaml"
    code = main(_args(cache_dir, "--budget", "energy_j<=7e-8", "--budget", "latency_s<=1", "--json",
                      "--write-config", str(plan_yaml)))
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert {"status", "objective", "budgets", "layers", "total"} <= set(out)
    assert out["status"] == "optimal"
    assert set(out["budgets"]) == {"energy_j", "latency_s"}
    assert {"limit", "value"} <= set(out["budgets"]["energy_j"])
    assert [x["name"] for x in out["layers"]] == ["conv1", "conv2", "fc1", "fc2"]
    assert set(out["layers"][0]) == {"name", "weight_format", "activation_format", "pruning"}
    assert {"latency_s", "energy_j", "macs", "weight_bytes"} <= set(out["total"])
    # the written config is what estimate prices: same energy as the plan's re-estimate
    code = main(["estimate", DIGITS, "--shape", "batch=1", "--target", "rs-engine", "--config", str(plan_yaml),
                 "--json"])
    assert code == 0
    est = json.loads(capsys.readouterr().out)
    assert est["total"]["energy_j"] == pytest.approx(out["budgets"]["energy_j"]["value"], rel=1e-12)
    assert est["total"]["energy_j"] <= 7e-8
    direct = estimate(DIGITS, "rs-engine", config=str(plan_yaml), shapes={"batch": 1})
    assert direct.total.energy_j == pytest.approx(out["total"]["energy_j"])


def test_write_config_is_accepted_by_simulate(cache_dir, tmp_path, capsys):
    plan_yaml = tmp_path / "plan.yaml"
    assert main(_args(cache_dir, "--budget", "energy_j<=5e-8", "--write-config", str(plan_yaml))) == 0
    capsys.readouterr()
    inputs = tmp_path / "images.npz"
    with np.load(CALIB) as z:
        np.savez(inputs, image=z["image"])
    assert main(["simulate", DIGITS, "--shape", "batch=32", "--inputs", str(inputs), "--config", str(plan_yaml)]) == 0
    assert "conv2" in capsys.readouterr().out


def test_infeasible_exits_2_with_min_reachable(cache_dir, capsys):
    code = main(_args(cache_dir, "--budget", "energy_j<=1e-12", "--budget", "size_bytes<=1e9"))
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no plan meets the budgets")
    assert "energy_j <= 1e-12 (minimum reachable" in err and "size_bytes" in err


@pytest.mark.parametrize("bad", ["energy<=1", "energy_j<1", "energy_j<=x"])
def test_bad_budget_is_a_user_error(cache_dir, bad, capsys):
    assert main(_args(cache_dir, "--budget", bad)) == 2
    assert "error:" in capsys.readouterr().err


def test_pareto_prints_front_and_plots(cache_dir, tmp_path, capsys):
    png = tmp_path / "front.png"
    assert main(_args(cache_dir, "--pareto", "energy_j", "--points", "4", "--plot", str(png), "--json")) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["budget"] == "energy_j" and len(out["points"]) == 4
    assert png.stat().st_size > 1000


def test_subprocess_infeasible_exit_code(cache_dir):
    r = subprocess.run([sys.executable, "-m", "hwsim", *_args(cache_dir, "--budget", "energy_j<=1e-12", "--json")],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2, r.stderr
    assert json.loads(r.stdout)["status"] == "infeasible"
    assert "minimum reachable" in r.stderr


def test_package_is_a_plain_module_with_lazy_names():
    import types

    import hwsim
    import hwsim.solve.costs as costs
    import hwsim.solve.knapsack as knapsack

    assert type(hwsim.solve) is types.ModuleType and hwsim.solve.mckp is knapsack.mckp
    assert costs.BUDGETS == ("latency_s", "energy_j", "size_bytes", "bops")
    plan = hwsim.solve.solve(DIGITS, "rs-engine", {"energy_j": 1e-12}, choices="w=int8;a=int8", metric="proxy")
    assert plan.status == "infeasible"
    with pytest.raises(AttributeError):
        hwsim.solve.no_such_name


def test_library_errors_name_parameters_and_the_cli_names_flags(capsys):
    from hwsim.errors import ConfigError
    from hwsim.solve import parse_choices

    with pytest.raises(ConfigError) as exc:
        parse_choices("w=int8;bits=4")
    assert exc.value.param == "choices" and "--" not in str(exc.value)
    assert main(["solve", DIGITS, "--target", "rs-engine", "--budget", "energy_j<=1", "--choices", "w=int8;bits=4",
                 "--metric", "proxy", "--quiet"]) == 2
    assert "error: --choices: part 'bits=4'" in capsys.readouterr().err


def test_library_never_names_a_cli_flag():
    """Library errors speak of parameters (issue 9); only hwsim/commands and cli.py name flags."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "hwsim" / "solve"
    hits = []
    for path in root.glob("*.py"):
        tree = ast.parse(path.read_text())
        docs = {id(n.body[0].value) for n in ast.walk(tree) if isinstance(n, (ast.Module, ast.FunctionDef, ast.ClassDef))
                and n.body and isinstance(n.body[0], ast.Expr)}
        hits += [f"{path.name}:{n.lineno}" for n in ast.walk(tree) if isinstance(n, ast.Constant)
                 and isinstance(n.value, str) and id(n) not in docs and re.search(r"(^|\W)--[a-z]", n.value)]
    assert hits == []


def test_progress_goes_to_a_callback_and_the_cli_draws_it(cache_dir, capsys):
    from hwsim.solve import tables

    seen = []
    tables(DIGITS, "rs-engine", "w=int8,int4;a=int8", "output_mse", CALIB, 4, cache_dir,
           progress=lambda done, total, what: seen.append((done, total, what)))
    total = seen[-1][1]
    assert total % 2 == 0 and [d for d, _, _ in seen] == list(range(1, total + 1))
    assert "fc1 w=int4,a=int8" in [w for _, _, w in seen]
    assert capsys.readouterr().err == ""  # the library drew nothing
    assert main(["solve", DIGITS, "--target", "rs-engine", "--budget", "energy_j<=1", "--choices", "w=int8,int4;a=int8",
                 "--calib", CALIB, "--samples", "4", "--cache-dir", str(cache_dir), "--verbose"]) == 0
    err = capsys.readouterr().err
    assert "\rsensitivity [" in err and f"{total}/{total}" in err
    m = re.search(r"time: start and imports ([0-9.]+) s, load ([0-9.]+) s, sensitivity ([0-9.]+) s, "
                  r"costs ([0-9.]+) s, MILP ([0-9.]+) s, re-estimate ([0-9.]+) s, simulate plans ([0-9.]+) s; "
                  r"total ([0-9.]+) s", err)
    parts = [float(x) for x in m.groups()]
    assert sum(parts[:-1]) == pytest.approx(parts[-1], abs=0.07)
    assert parts[0] > 0  # this process (pytest) started before the command


def test_cli_names_the_flag_of_a_library_parameter(tmp_path, capsys):
    """sim.boundary speaks of the model's shapes; hwsim simulate adds the flag that sets them."""
    x = tmp_path / "x.npz"
    np.savez(x, input=np.zeros((1, 64, 8, 8), np.float32))
    assert main(["simulate", "conv2d", "--inputs", str(x)]) == 2
    err = capsys.readouterr().err
    assert "has shape (1, 64, 8, 8)" in err and err.rstrip().endswith("[--shape]")
