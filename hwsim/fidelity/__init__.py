"""Measured fidelity: measurement records, validation of a target against them, calibration."""
