"""Bad user input ends in ``error: ...`` with exit status 2, never a traceback or a silent wrong answer.

Each case is a command line that used to crash (``internal error``) or succeed on nonsense; the test
asserts exit status 2 and that the message names the offending value and how to fix it.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from hwsim.cli import main

GEMM = "gemm:m=2,k=8,n=4"


def run_cli(capsys, argv):
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def assert_user_error(capsys, argv, *needles):
    code, out, err = run_cli(capsys, argv)
    assert code == 2, (code, out, err)
    assert err.startswith("error: "), err
    assert "Traceback" not in err and "internal error" not in err
    for n in needles:
        assert n in err, (n, err)
    return err


@pytest.fixture
def files(tmp_path, monkeypatch):
    """Bad input files in a temp working directory."""
    monkeypatch.chdir(tmp_path)
    garbage = bytes(range(256)) * 2
    for name in ("garbage.yaml", "garbage.npz"):
        (tmp_path / name).write_bytes(garbage)
    x = np.random.default_rng(0).standard_normal((2, 8)).astype(np.float32)
    np.savez(tmp_path / "ok.npz", input=x)
    np.savez(tmp_path / "obj.npz", input=np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    np.savez(tmp_path / "labels_str.npz", input=x, labels=np.array(["a", "b"]))
    np.savez(tmp_path / "labels_nan.npz", input=x, labels=np.array([np.nan, 1.0]))
    np.savez(tmp_path / "labels_frac.npz", input=x, labels=np.array([0.5, 1.0]))
    np.savez(tmp_path / "labels_range.npz", input=x, labels=np.array([0, 4]))
    return tmp_path


# --- model parameters: wrong type or range used to crash or build nonsense -------------------------

@pytest.mark.parametrize("model, needles", [
    ("gemm:m=-1", ["m=-1", "gemm:m=512"]),
    ("gemm:m=0", ["m=0", "integer in [1,"]),
    ("gemm:m=abc", ["m='abc'", "integer"]),
    ("gemm:m=1.5", ["m=1.5", "integer"]),
    ("gemm:m=100000000000000000000", ["m=100000000000000000000", "2147483647"]),
    ("gemm:bias=3", ["bias=3", "true or false"]),
    ("resnet18:layers=abc", ["layers='abc'", "layers: [2, 2, 2, 2]"]),
    ("resnet18:layers=0", ["layers=0", "list of integers"]),
    ("conv2d:stride=0", ["stride=0", "conv2d:stride=1"]),
    ("conv2d:r=100", ["r=100", "use r <= 56"]),
    ("llama2-7b:context=-5", ["context=-5", "llama2-7b:context=512"]),
    ("llama2-7b:phase=3", ["phase=3", "string"]),
    ("bert-base:sequence=0", ["sequence=0", "bert-base:sequence=128"]),
    ("bert-base:heads=5", ["heads=5", "divide hidden"]),
    ("vit-b16:patch=15", ["patch=15", "not divisible"]),
    ("mobilenet_v2:width_mult=0", ["width_mult=0", "finite number > 0"]),
    ("mobilenet_v2:width_mult=.nan", ["width_mult=nan", "finite number > 0"]),
    ("resnet18:block=bogus", ["block='bogus'", "basic or bottleneck"]),
    ("llama2-7b:kv_heads=5", ["kv_heads=5", "divides heads"]),
    ("llama2-7b:kv_heads=0", ["kv_heads=0", "llama2-7b:kv_heads=1"]),
])
def test_bad_model_parameters(capsys, model, needles):
    assert_user_error(capsys, ["summary", model], *needles)


def test_vit_patch_that_divides_the_image_still_builds(capsys):
    code, out, _ = run_cli(capsys, ["summary", "vit-b16:patch=14,layers=1"])
    assert code == 0 and "vit-b16" in out


@pytest.mark.parametrize("params, needle", [
    ("{m: abc, k: 8, n: 8}", "m='abc'"),
    ("{m: .nan, k: 8, n: 8}", "m=nan"),
    ("{m: 100000000000000000000, k: 8, n: 8}", "m=100000000000000000000"),
])
def test_bad_parameters_in_model_yaml(capsys, tmp_path, params, needle):
    path = tmp_path / "m.yaml"
    path.write_text(f"schema_version: 1\nname: x\nfamily: gemm\nsource: s\nparams: {params}\n")
    assert_user_error(capsys, ["summary", str(path)], needle, "must be")


# --- binary files where YAML is expected -----------------------------------------------------------

@pytest.mark.parametrize("argv", [
    ["summary", "garbage.yaml"],
    ["summary", GEMM, "--config", "garbage.yaml"],
    ["estimate", GEMM, "--target", "garbage.yaml"],
    ["compare-formats", "--target", "garbage.yaml", "--samples", "256"],
])
def test_binary_yaml(capsys, files, argv):
    assert_user_error(capsys, argv, "garbage.yaml", "binary")


# --- .npz inputs and labels --------------------------------------------------------------------------

@pytest.mark.parametrize("flag, argv_tail", [
    ("--inputs", []),
    ("--calib", ["--target", "int8-npu", "--budget", "energy_j<=1", "--quiet", "--cache-dir", "cache"]),
])
@pytest.mark.parametrize("name, needles", [
    ("garbage.npz", ["garbage.npz", "not a numpy .npz", "numpy.savez"]),
    ("obj.npz", ["obj.npz", "object (pickled) array", "numpy.savez"]),
])
def test_unreadable_npz(capsys, files, flag, argv_tail, name, needles):
    cmd = "simulate" if flag == "--inputs" else "solve"
    assert_user_error(capsys, [cmd, GEMM, flag, name, *argv_tail], *needles)


def test_npz_directory(capsys, files):
    (files / "adir").mkdir()
    assert_user_error(capsys, ["simulate", GEMM, "--inputs", "adir"], "'adir'", "is a directory")


@pytest.mark.parametrize("name, needle", [
    ("labels_str.npz", "dtype <U1"),
    ("labels_nan.npz", "NaN, inf or fractional"),
    ("labels_frac.npz", "NaN, inf or fractional"),
    ("labels_range.npz", "hold 4, outside the class indices [0, 4)"),
])
def test_bad_labels_simulate(capsys, files, name, needle):
    """These used to report a top-1 accuracy computed on nonsense labels."""
    assert_user_error(capsys, ["simulate", GEMM, "--inputs", name], needle, "integer class index")


@pytest.mark.parametrize("name, needle", [
    ("labels_str.npz", "dtype <U1"),
    ("labels_nan.npz", "NaN, inf or fractional"),
    ("labels_range.npz", "outside the class indices [0, 4)"),
])
def test_bad_labels_solve_task_loss(capsys, files, name, needle):
    assert_user_error(capsys, ["solve", GEMM, "--target", "int8-npu", "--budget", "energy_j<=1", "--calib", name,
                               "--metric", "task_loss", "--quiet", "--cache-dir", "cache"], needle)


def test_integral_float_labels_still_accepted():
    from hwsim.sim.metrics import class_labels

    assert class_labels(np.array([0.0, 3.0]), 4).tolist() == [0, 3]


# --- output paths: checked before the work, write failures reported ---------------------------------

ESTIMATE = ["estimate", GEMM, "--target", "int8-npu"]
PARETO = ["solve", GEMM, "--target", "int8-npu", "--pareto", "energy_j", "--metric", "proxy", "--quiet",
          "--cache-dir", "cache"]


@pytest.mark.parametrize("argv, needles", [
    (ESTIMATE + ["--plot", "/proc/x.png"], ["--plot", "/proc/x.png", "pick a writable path"]),
    (ESTIMATE + ["--plot", "out.txt"], ["'.txt'", "end the name in .png"]),
    (ESTIMATE + ["--plot", "out"], ["'(none)'", "end the name in .png"]),
    (ESTIMATE + ["--plot", "nodir/x.png"], ["directory 'nodir' does not exist"]),
    (PARETO + ["--plot", "/proc/x.png"], ["--plot", "/proc/x.png", "pick a writable path"]),
    (PARETO + ["--plot", "out.txt"], ["'.txt'", "end the name in .png"]),
    (["compare-formats", "--samples", "256", "--plot", "out.txt"], ["'.txt'", "end the name in .png"]),
    (["simulate", GEMM, "--out", "/proc/x.npz"], ["--out", "/proc/x.npz", "pick a writable path"]),
    (["simulate", GEMM, "--report-json", "/proc/x.json"], ["--report-json", "/proc/x.json"]),
    (["simulate", GEMM, "--out", "nodir/x.npz"], ["directory 'nodir' does not exist"]),
])
def test_unwritable_outputs(capsys, files, argv, needles):
    assert_user_error(capsys, argv, *needles)


def test_plot_into_directory(capsys, files):
    (files / "adir").mkdir()
    assert_user_error(capsys, ESTIMATE + ["--plot", "adir"], "'adir' is a directory")


@pytest.mark.parametrize("argv, needle", [
    (["simulate", GEMM, "--seed", "-1"], "argument --seed: '-1' is not an integer >= 0"),
    (["compare-formats", "--seed", "-1"], "argument --seed: '-1' is not an integer >= 0"),
    (ESTIMATE + ["--seed", "x"], "argument --seed: 'x' is not an integer >= 0"),
    (["solve", GEMM, "--target", "int8-npu", "--budget", "energy_j<=1", "--samples", "0"],
     "argument --samples: '0' is not an integer >= 1"),
])
def test_bad_counts_rejected_by_the_parser(capsys, argv, needle):
    """Negative seeds used to reach numpy and end in an internal error."""
    with pytest.raises(SystemExit) as exc:
        main(argv)
    err = capsys.readouterr().err
    assert exc.value.code == 2 and needle in err and "Traceback" not in err


def test_duplicate_budget(capsys, files):
    """The second budget of the same name used to silently replace the first."""
    assert_user_error(capsys, ["solve", GEMM, "--target", "int8-npu", "--budget", "energy_j<=1", "--budget",
                               "energy_j<=2", "--metric", "proxy", "--quiet", "--cache-dir", "cache"],
                      "energy_j given twice", "keep one --budget per name")


# --- targets, ONNX shapes, formats, choices ---------------------------------------------------------

@pytest.mark.parametrize("value", [".inf", "1e400", ".nan"])
def test_target_numbers_must_be_finite(capsys, tmp_path, value):
    """An infinite clock used to price every layer at 0 s."""
    from importlib import resources

    text = resources.files("hwsim._targets").joinpath("int8-npu.yaml").read_text()
    path = tmp_path / "t.yaml"
    path.write_text(text.replace("clock_hz: 5.0e8", f"clock_hz: {value}"))
    assert_user_error(capsys, ESTIMATE[:2] + ["--target", str(path)], "field 'clock_hz'", "finite number",
                      "give a plain number")


@pytest.mark.parametrize("value", ["-1", "0"])
def test_onnx_shape_binding_must_be_positive(capsys, value):
    from importlib import resources

    onnx_path = str(resources.files("hwsim._models").joinpath("digits_cnn.onnx"))
    assert_user_error(capsys, ["summary", onnx_path, "--shape", f"batch={value}"],
                      f"shapes batch={value}", "must be >= 1", "[--shape]")


def test_fp64_compares_without_crashing(capsys):
    """Scales near fp64's max overflow float64; this used to end in 'math domain error'."""
    code, out, err = run_cli(capsys, ["compare-formats", "--formats", "fp64,int8", "--samples", "512", "--json"])
    assert code == 0 and "internal error" not in err
    import json

    rows = {r["format"]: r for r in json.loads(out)["rows"]}
    # 52 mantissa bits: lossless here (null = +inf) or far above int8
    assert all(v is None or v > 200 for v in rows["fp64"]["sqnr_db"].values())
    assert all(v is not None and v < 60 for v in rows["int8"]["sqnr_db"].values())


def test_choices_key_given_twice(capsys, files):
    """``w=int8;w=int4`` used to keep only int4, silently."""
    assert_user_error(capsys, ["solve", GEMM, "--target", "int8-npu", "--budget", "energy_j<=1", "--choices",
                               "w=int8;weights=int4", "--metric", "proxy", "--quiet", "--cache-dir", "cache"],
                      "w= twice", "'weights=int4'")


# --- the safety net: a real bug still says so ------------------------------------------------------

def test_internal_failure_says_internal_error(capsys, monkeypatch):
    import hwsim.commands.summary as summary

    def boom(args):
        raise RuntimeError("deliberate failure")

    monkeypatch.setattr(summary, "run_summary", boom)
    code, out, err = run_cli(capsys, ["summary", GEMM])
    assert code == 1
    assert err.startswith("internal error: RuntimeError: deliberate failure")
    assert "Traceback" not in err and "--debug" in err


# --- valid inputs that crashed ---------------------------------------------------------------------

@pytest.mark.parametrize("weights, activations", [("mxfp4_e2m1", "mxfp4_e2m1"), ("mxfp4_e2m1", "int8"),
                                                   ("int8", "mxfp8_e4m3")])
def test_simulate_mx_formats(capsys, weights, activations):
    """Per-tensor MX specs passed axis=None to the block format: 'NoneType' object is not iterable."""
    code, out, err = run_cli(capsys, ["simulate", "gemm:m=2,k=64,n=4", "--weights", weights, "--activations",
                                      activations])
    assert code == 0, err
    sqnr = float(next(l for l in out.splitlines() if l.startswith("gemm ")).split()[2])
    assert 5 < sqnr < 40  # 4-bit elements with a shared exponent: ~10-20 dB, not exact, not noise


def test_block_format_axis_none_means_last_axis():
    from hwsim import formats

    fmt = formats.get("mxfp4_e2m1")
    x = np.random.default_rng(1).standard_normal((3, 40))
    np.testing.assert_array_equal(fmt.quantize(x, axis=None), fmt.quantize(x, axis=-1))
    assert not np.array_equal(fmt.quantize(x, axis=None), fmt.quantize(x, axis=0))


def test_empty_format_option(capsys):
    """``--weights ''`` used to leave the model unquantized without a word."""
    assert_user_error(capsys, ["summary", GEMM, "--weights", ""], "weights is empty", "int8", "[--weights]")


def test_token_ids_outside_the_embedding_table(capsys, tmp_path):
    """Ids past the table end used to raise IndexError (internal error)."""
    from pathlib import Path

    path = tmp_path / "ids.npz"
    np.savez(path, input_ids=np.full((1, 8), 10**6, np.int64))
    model = str(Path(__file__).parents[1] / "data" / "tiny_bert.onnx")
    assert_user_error(capsys, ["simulate", model, "--shape", "batch=1,sequence=8", "--inputs", str(path)],
                      "id 1000000 is outside the table of 64 rows", "ids in [0, 63]")


def test_simulate_bert_without_inputs(capsys):
    """Seeded token-type ids were drawn below 100 for a 2-row table: bert-base could not be simulated."""
    code, out, err = run_cli(capsys, ["simulate", "bert-base:layers=1,sequence=8", "--all-ops"])
    assert code == 0, err
    assert "embeddings.token_type_embeddings" in out


def test_out_of_memory_is_a_user_error(capsys, monkeypatch):
    """Sizes too large for the machine: say so and how to shrink them, not 'internal error'."""
    import hwsim.commands.simulate as simulate

    def too_big(args):
        raise MemoryError("Unable to allocate 74.5 GiB for an array with shape (100000, 100000)")

    monkeypatch.setattr(simulate, "run_simulate", too_big)
    err = assert_user_error(capsys, ["simulate", "gemm:m=100000,k=100000,n=100000"], "out of memory", "74.5 GiB",
                            "smaller model parameters")
    assert "internal error" not in err


def test_bad_input_through_python_m_hwsim(tmp_path):
    """The real entry point: exit status 2, one 'error:' line, no traceback."""
    import subprocess
    import sys

    p = subprocess.run([sys.executable, "-m", "hwsim", "summary", "gemm:m=-1"], capture_output=True, text=True,
                       cwd=tmp_path, timeout=120)
    assert p.returncode == 2
    assert p.stderr.startswith("error: model 'gemm': parameter m=-1") and "Traceback" not in p.stderr


def test_library_errors_name_parameters_and_the_cli_names_flags():
    """Issue 9: library messages speak of parameters; only the CLI maps them to its flags."""
    import re
    from pathlib import Path

    import hwsim

    root = Path(hwsim.__file__).parent
    offenders = []
    for path in root.rglob("*.py"):
        rel = path.relative_to(root).as_posix()
        if rel == "cli.py" or rel.startswith("commands/"):
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"(raise \w+Error|notes\.append)\(.*[\"']--[a-z]", line) or \
                    re.search(r"^\s+f?[\"'].*(pass e\.g\.|bind it with|Shrink it with) --[a-z]", line):
                offenders.append(f"{rel}:{n}: {line.strip()}")
    assert not offenders, "\n".join(offenders)


def test_cli_appends_the_flag_of_a_parameter_error(capsys):
    code, out, err = run_cli(capsys, ["compare-formats", "--formats", " , "])
    assert code == 2 and "[--formats]" in err, err
