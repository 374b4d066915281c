"""Shared fixtures of the solver tests: the bundled digits CNN and its tables (built once)."""

from __future__ import annotations

import pytest
from solve_paths import CALIB, CHOICES, DIGITS


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("hwsim-cache")


@pytest.fixture(scope="session")
def digits_tables(cache_dir):
    from hwsim.solve import tables

    return tables(DIGITS, "rs-engine", CHOICES, "output_mse", CALIB, 16, cache_dir)
