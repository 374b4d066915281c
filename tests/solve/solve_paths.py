"""Paths and choices shared by the solver tests (a uniquely named module: several test
directories have a conftest.py, so tests must not import constants from ``conftest``)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DIGITS = str(ROOT / "models" / "digits_cnn.onnx")
CALIB = str(ROOT / "models" / "digits_calib.npz")
TEST = str(ROOT / "models" / "digits_test.npz")
CHOICES = "w=int8,int4,int2;a=int8;prune=0,50%,75%"
