"""Shared fixtures of the solver tests: the bundled digits CNN and its tables (built once)."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DIGITS = str(ROOT / "models" / "digits_cnn.onnx")
CALIB = str(ROOT / "models" / "digits_calib.npz")
TEST = str(ROOT / "models" / "digits_test.npz")
CHOICES = "w=int8,int4,int2;a=int8;prune=0,50%,75%"


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("hwsim-cache")


@pytest.fixture(scope="session")
def digits_tables(cache_dir):
    from hwsim.solve import tables

    return tables(DIGITS, "rs-engine", CHOICES, "output_mse", CALIB, 16, cache_dir)
