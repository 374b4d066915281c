"""The requant registry: every mode the simulator and the CLI accept is one registered file."""

import numpy as np
import pytest

from hwsim import kernel_api, requant
from hwsim.errors import ConfigError
from hwsim.sim.runner import check_requant


def test_bundled_modes_registered_once():
    assert requant.names() == ("exact", "onnxruntime", "gemmlowp", "tflite")
    for name in requant.names():
        assert requant.get(name).name == name == check_requant(name)


def test_unknown_mode_names_the_valid_ones():
    with pytest.raises(ConfigError, match="gemmlowp"):
        requant.get("fast")
    with pytest.raises(ValueError):
        requant.register(requant.get("exact"))


def test_multiplier_arithmetic_per_mode():
    s = (np.float32(0.1), np.float32(0.3), np.float32(0.7))
    assert requant.get("onnxruntime").multiplier(*s).dtype == np.float32
    assert requant.get("gemmlowp").multiplier(*s).dtype == np.float64
    assert requant.get("exact").multiplier(*s).dtype == np.float32  # the scales' own type
    assert requant.get("exact").multiplier(0.1, 0.3, np.float32(0.7)).dtype == np.float64


def test_apply_overflow_is_the_one_rule():
    acc = np.array([2**15, -(2**15) - 1, 5], np.int64)
    np.testing.assert_array_equal(kernel_api.apply_overflow(acc, 16, "wrap"), [-(2**15), 2**15 - 1, 5])
    np.testing.assert_array_equal(kernel_api.apply_overflow(acc, 16, "saturate"), [2**15 - 1, -(2**15), 5])
    np.testing.assert_array_equal(kernel_api.apply_overflow(acc, 16, "none"), acc)
    with pytest.raises(ConfigError):
        kernel_api.apply_overflow(acc, 16, "clip")
